/** Errors raised by tcp-repair. Kernel failures keep Node's ErrnoException shape. */
import type { FeatureName } from './features.js';

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

/**
 * A kernel feature the operation needs is unavailable: this kernel lacks it (or refused it), or it
 * was forced off with TCP_REPAIR_DISABLE / setDisabledFeatures(). `feature` names it (as
 * {@link probe} reports it); the message says what it was needed for and what to do. A refused
 * checkpoint leaves the socket as it was (working, nothing frozen); a refused restore leaves
 * nothing behind, and the image can still be restored where the feature exists.
 */
export class FeatureUnavailableError extends TcpRepairError<'ERR_FEATURE_UNAVAILABLE'> {
  /** The feature, as named by probe() and TCP_REPAIR_DISABLE. */
  readonly feature: FeatureName;
  /** 'disabled': forced off in this process; 'kernel': the kernel refused it (see `cause`). */
  readonly reason: 'disabled' | 'kernel';
  constructor(feature: FeatureName, reason: 'disabled' | 'kernel', message: string, cause?: unknown) {
    super('ERR_FEATURE_UNAVAILABLE', message);
    this.feature = feature;
    this.reason = reason;
    if (cause !== undefined) this.cause = cause;
  }
}
