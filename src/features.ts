/**
 * Which kernel features checkpoint and restore may use, and the switch that forces some off.
 *
 * A feature is off when it is disabled (TCP_REPAIR_DISABLE, read once when this module loads, or
 * setDisabledFeatures()) or when the kernel refused it once in this process (ENOPROTOOPT from a
 * kernel without it, for example). Checkpoint and restore never probe: they read `off`, a plain
 * object recomputed only when either set changes, so a check costs a property read per socket.
 * What each fallback does is described in probe.ts (DESCRIPTIONS) and docs/checkpoint-restore.md.
 */
import { FeatureUnavailableError, isErrnoError } from './errors.js';

/** The kernel features tcp-repair relies on, each found by trying it (see {@link probe}). */
export type FeatureName =
  | 'tcpRepair'
  | 'repairOptions'
  | 'repairWindow'
  | 'timestampSet'
  | 'repairOffNoWindowProbe'
  | 'queueRefill'
  | 'queuePeek'
  | 'halfClosedRepair'
  | 'ipv6'
  | 'freebind'
  | 'transparent'
  | 'freezeFilter'
  | 'filterGracePeriod'
  | 'pidfdGetfd';

// A record, so the compiler insists on every name; its key order is probe()'s report order.
const ORDER: Record<FeatureName, true> = {
  tcpRepair: true,
  repairOptions: true,
  repairWindow: true,
  timestampSet: true,
  repairOffNoWindowProbe: true,
  queueRefill: true,
  queuePeek: true,
  halfClosedRepair: true,
  ipv6: true,
  freebind: true,
  transparent: true,
  freezeFilter: true,
  filterGracePeriod: true,
  pidfdGetfd: true,
};

/** Every {@link FeatureName}, in the order probe() reports them. */
export const FEATURE_NAMES: readonly FeatureName[] = Object.freeze(Object.keys(ORDER) as FeatureName[]);

/** The environment variable read at load: feature names separated by commas (or spaces). */
export const DISABLE_ENV = 'TCP_REPAIR_DISABLE';

const disabled = new Set<FeatureName>();
/** Features the kernel refused in this process, with the error it gave. */
const missing = new Map<FeatureName, Error>();

/** Per feature: true when checkpoint and restore must take its fallback (read on hot paths). */
export const off: Record<FeatureName, boolean> = Object.fromEntries(FEATURE_NAMES.map((n) => [n, false])) as Record<FeatureName, boolean>;

function recompute(): void {
  for (const name of FEATURE_NAMES) off[name] = disabled.has(name) || missing.has(name);
}

function isFeatureName(name: string): name is FeatureName {
  return Object.hasOwn(ORDER, name);
}

/**
 * Forces features off in this process, replacing the previous list (an empty list re-enables
 * everything; TCP_REPAIR_DISABLE set the initial list). Checkpoint and restore then behave as on a
 * kernel without them: they take the feature's fallback or refuse with a
 * {@link FeatureUnavailableError}, and {@link probe} reports them unavailable with code 'EDISABLED'.
 * For tests and compatibility checks. Throws a TypeError naming the valid names for an unknown one.
 */
export function setDisabledFeatures(names: Iterable<FeatureName>): void {
  const list = [...names];
  const unknown = list.filter((n) => !isFeatureName(n));
  if (unknown.length > 0) {
    throw new TypeError(`unknown feature name(s) ${unknown.map((n) => `'${n}'`).join(', ')}; known: ${FEATURE_NAMES.join(', ')}`);
  }
  disabled.clear();
  for (const name of list) disabled.add(name);
  recompute();
}

/** The features forced off in this process (TCP_REPAIR_DISABLE or {@link setDisabledFeatures}). */
export function disabledFeatures(): FeatureName[] {
  return FEATURE_NAMES.filter((n) => disabled.has(n));
}

export function isDisabled(name: FeatureName): boolean {
  return disabled.has(name);
}

/** Records that the kernel refused a feature: later sockets take the fallback without trying. */
export function noteMissing(name: FeatureName, cause: Error): void {
  missing.set(name, cause);
  recompute();
}

/** True for the errno a kernel gives for an option it does not know. */
export function isUnknownOption(error: unknown): boolean {
  return isErrnoError(error) && error.code === 'ENOPROTOOPT';
}

/**
 * The error for an operation that needs `feature`: `needs` says what it was for, `advice` what to
 * do. With `cause` the kernel refused it (and later sockets will not try); otherwise it is off.
 */
export function unavailable(feature: FeatureName, needs: string, advice: string, cause?: unknown): FeatureUnavailableError {
  if (cause instanceof Error && !disabled.has(feature)) noteMissing(feature, cause);
  const known = missing.get(feature);
  const why = disabled.has(feature)
    ? `forced off (${DISABLE_ENV} or setDisabledFeatures())`
    : `this kernel refused it${known ? `: ${known.message}` : ''}`;
  return new FeatureUnavailableError(feature, disabled.has(feature) ? 'disabled' : 'kernel', `kernel feature '${feature}' is unavailable (${why}); ${needs}. ${advice}`, known);
}

function readEnvironment(): void {
  const raw = process.env[DISABLE_ENV];
  if (raw === undefined || raw.trim() === '') return;
  const names = raw.split(/[\s,]+/).filter((n) => n !== '');
  const unknown = names.filter((n) => !isFeatureName(n));
  if (unknown.length > 0) {
    process.emitWarning(`${DISABLE_ENV}: ignoring unknown feature name(s) ${unknown.join(', ')}; known: ${FEATURE_NAMES.join(', ')}`, 'TcpRepairWarning');
  }
  setDisabledFeatures(names.filter(isFeatureName));
}

readEnvironment();
