/** Errors raised by tcp-repair. Kernel failures keep Node's ErrnoException shape. */

/** A failed syscall: `code` ('EPERM'), negative `errno`, `syscall` ('setsockopt(TCP_REPAIR)'). */
export interface ErrnoError extends Error {
  code: string;
  errno: number;
  syscall: string;
  fd?: number;
}

export function isErrnoError(value: unknown): value is ErrnoError {
  return value instanceof Error && typeof (value as ErrnoError).code === 'string' && typeof (value as ErrnoError).errno === 'number';
}

/** Raised when a socket cannot be handled (not TCP, wrong state, Node state that cannot move). */
export class SocketStateError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'SocketStateError';
    this.code = code;
  }
}
