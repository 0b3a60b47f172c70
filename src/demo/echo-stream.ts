/**
 * The client end of one STREAM connection of the demo's protocol (protocol.ts): random chunks
 * written at a steady pace, every byte echoed back by the service; at the end the sha256 of what
 * was sent is compared with the sha256 of what came back. Shared by the demo's client and the
 * host-to-host bench's client, which differ only in their clock and pace.
 */
import type net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

/** Byte count and sha256 of one direction of a stream. */
export interface StreamDigest {
  bytes: number;
  sha256: string;
}

export interface EchoStreamOptions {
  /** Stop writing after this many bytes. */
  totalBytes: number;
  /** One chunk of up to 16 KiB every `intervalMs`, while less than 4 chunks wait in Node's buffer. */
  intervalMs: number;
  /** The clock stalls are measured with (ms). */
  now: () => number;
  /** True once the run is finishing: no more writes. */
  finishing: () => boolean;
  /** Longest wait (ms) for the last echoes when finishing. */
  drainWaitMs: number;
}

export interface EchoStreamResult {
  ok: boolean;
  /** Longest time with nothing back while something was outstanding (ms). */
  stall: number;
  sent: StreamDigest;
  echoed: StreamDigest;
  error?: string;
}

const CHUNK_BYTES = 16 * 1024;

/** Starts streaming on a connected socket; the returned function stops it and reports. */
export function startEchoStream(socket: net.Socket, options: EchoStreamOptions): () => Promise<EchoStreamResult> {
  const sent = createHash('sha256');
  const received = createHash('sha256');
  let sentBytes = 0;
  let receivedBytes = 0;
  let lastArrival = options.now();
  let stall = 0;
  let error: string | undefined;
  socket.setNoDelay(true);
  socket.on('error', (e: NodeJS.ErrnoException) => (error ??= `${e.code ?? ''} ${e.message}`));
  socket.on('data', (chunk: Buffer) => {
    const now = options.now();
    stall = Math.max(stall, now - lastArrival);
    lastArrival = now;
    received.update(chunk);
    receivedBytes += chunk.length;
  });
  socket.write('STREAM\n');
  const pump = setInterval(() => {
    if (options.finishing() || sentBytes >= options.totalBytes) return;
    if (socket.writableLength > 4 * CHUNK_BYTES) return; // back-pressure: the echo is the limit
    const chunk = randomBytes(Math.min(CHUNK_BYTES, options.totalBytes - sentBytes));
    sent.update(chunk);
    // A stall is counted only while something is outstanding: with nothing outstanding the wait
    // starts now.
    if (receivedBytes === sentBytes) lastArrival = options.now();
    sentBytes += chunk.length;
    socket.write(chunk);
  }, options.intervalMs);
  return async () => {
    clearInterval(pump);
    const deadline = Date.now() + options.drainWaitMs;
    while (receivedBytes < sentBytes && Date.now() < deadline && error === undefined) await new Promise((r) => setTimeout(r, 20));
    const out = { bytes: sentBytes, sha256: sent.digest('hex') };
    const back = { bytes: receivedBytes, sha256: received.digest('hex') };
    const ok = error === undefined && back.bytes === out.bytes && back.sha256 === out.sha256;
    socket.destroy();
    return {
      ok,
      stall,
      sent: out,
      echoed: back,
      error: error ?? (ok ? undefined : `echoed ${back.bytes} of ${out.bytes} bytes${back.bytes === out.bytes ? ', checksum mismatch' : ''}`),
    };
  };
}
