/** Errors raised by tcp-repair. Kernel failures keep Node's ErrnoException shape. */

/** A failed syscall: `code` ('EPERM'), negative `errno`, `syscall` ('setsockopt(TCP_REPAIR)'). */
export interface ErrnoError extends Error {
  code: string;
  errno: number;
  syscall: string;
  fd?: number;
}

/** True for a failed syscall's error (from the addon or Node itself): it has `code` and `errno`. */
export function isErrnoError(value: unknown): value is ErrnoError {
  return value instanceof Error && typeof (value as ErrnoError).code === 'string' && typeof (value as ErrnoError).errno === 'number';
}

/** Base of tcp-repair's own errors: a stable `code` to branch on, the class name as `name`. */
export class TcpRepairError<Code extends string = string> extends Error {
  readonly code: Code;
  constructor(code: Code, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Raised when a socket cannot be handled (not TCP, wrong state, Node state that cannot move). */
export class SocketStateError extends TcpRepairError {}
