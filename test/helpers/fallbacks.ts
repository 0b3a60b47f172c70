/**
 * Shared pieces of the fallback tests (test/fallbacks): a connection with bytes in every queue,
 * a check that both directions carry every byte (SHA-256 of each whole stream), and the shape of a
 * FeatureUnavailableError.
 */
import type net from 'node:net';
import { FeatureUnavailableError, lowlevel, setDisabledFeatures, socketFd, type FeatureName } from 'tcp-repair';
import { Collector, connectedPair, pattern, sha256, sleep, until, type Pair, type PairOptions } from './streams.js';

/** Forces `names` off for the rest of the test; everything is back on at its teardown. */
export function disable(t: Tap.Test, ...names: FeatureName[]): void {
  setDisabledFeatures(names);
  t.teardown(() => setDisabledFeatures([]));
}

export interface Loaded {
  pair: Pair;
  /** client -> server bytes the server has not read (Node's buffer and the kernel's queue). */
  up: Buffer;
  /** server -> client bytes the client has not acknowledged (its freeze filter drops them). */
  down: Buffer;
  /** Lets the client receive again (filter off, reading). */
  openClient(): void;
}

/**
 * A loopback connection whose server side has bytes in each queue: received unread, sent
 * unacknowledged, unsent. Checkpoint `pair.srv`; call openClient() once it is restored.
 */
export async function loadedPair(t: Tap.Test, options: PairOptions & { upBytes?: number; downBytes?: number } = {}): Promise<Loaded> {
  const pair = await connectedPair(options);
  t.teardown(() => pair.close());
  const { srv, client } = pair;
  const clientFd = socketFd(client);
  const up = pattern(options.upBytes ?? 300_000, 11);
  client.write(up);
  await until(() => lowlevel.queueSizes(socketFd(srv)).inq > 0, 5000, 'bytes in the server receive queue');
  await sleep(20);
  lowlevel.attachFreezeFilter(clientFd);
  client.pause();
  const down = pattern(options.downBytes ?? 1_500_000, 12);
  srv.write(down);
  await sleep(30);
  let open = false;
  return {
    pair,
    up,
    down,
    openClient() {
      if (open) return;
      open = true;
      lowlevel.detachFreezeFilter(clientFd);
      client.resume();
    },
  };
}

/**
 * Sends `tailUp` more bytes client -> server and `tailDown` server -> client, then checks each
 * side received exactly `up + tailUp` / `down + tailDown` (SHA-256 of each whole stream).
 */
export async function bothWaysIntact(
  t: Tap.Test,
  server: net.Socket,
  client: net.Socket,
  sent: { up?: Buffer; down?: Buffer },
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const tailUp = pattern(200_000, 21);
  const tailDown = pattern(200_000, 22);
  const atServer = new Collector(server);
  const atClient = new Collector(client);
  server.resume();
  client.resume();
  client.write(tailUp);
  server.write(tailDown);
  const up = Buffer.concat([sent.up ?? Buffer.alloc(0), tailUp]);
  const down = Buffer.concat([sent.down ?? Buffer.alloc(0), tailDown]);
  await Promise.all([atServer.waitFor(up.length, timeoutMs), atClient.waitFor(down.length, timeoutMs)]);
  t.equal(sha256(atServer.bytes()), sha256(up), `${what}: client -> server, ${up.length} bytes, SHA-256 equal`);
  t.equal(sha256(atClient.bytes()), sha256(down), `${what}: server -> client, ${down.length} bytes, SHA-256 equal`);
  t.same([...atServer.errors, ...atClient.errors], [], `${what}: no socket errors`);
}

/** Awaits `operation` and checks it failed with a FeatureUnavailableError for `feature`. */
export async function refusedFor(t: Tap.Test, operation: () => unknown, feature: FeatureName, reason: 'disabled' | 'kernel' = 'disabled'): Promise<FeatureUnavailableError> {
  let error: unknown = null;
  try {
    await operation();
  } catch (e) {
    error = e;
  }
  t.ok(error instanceof FeatureUnavailableError, `refused with a FeatureUnavailableError (got ${(error as Error | null)?.name}: ${(error as Error | null)?.message})`);
  const e = error as FeatureUnavailableError;
  t.equal(e?.code, 'ERR_FEATURE_UNAVAILABLE', 'code ERR_FEATURE_UNAVAILABLE');
  t.equal(e?.feature, feature, `feature '${feature}'`);
  t.equal(e?.reason, reason, `reason '${reason}'`);
  t.match(e?.message, `'${feature}'`, 'the message names the feature');
  return e;
}
