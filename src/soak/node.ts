/**
 * A soak host (runs inside host-a or host-b, driven over IPC by the soak driver). Every host
 * runs a receiver, serves whatever connections it holds, and when told migrates all of them to
 * the other host: so connections can move back and forth any number of times.
 *
 * Each connection starts with "SOAK <id> <key hex>\n" from the client; from then on both
 * directions carry the keyed streams of keystream.ts. The host checks every byte it receives
 * and sends its own stream; its per-connection state ({id, key, received, sent, firstBad}) is
 * what travels as the migration's meta.
 *
 * Fault hooks for the fault-injection tests (set with the 'fault' command) act inside this
 * real process: SIGKILL at a chosen step of a session, or a pause at one.
 */
import net from 'node:net';
import { readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { hangGuardMs } from '../child-ipc.js';
import { migrate } from '../migrate/migrate.js';
import { createReceiver, type Receiver } from '../migrate/receiver.js';
import { heldCount } from '../source-holds.js';
import * as ll from '../lowlevel.js';
import { streamBytes, StreamVerifier } from './keystream.js';

export interface NodeConfig {
  name: string;
  /** Service addresses to listen on (the initial owner only). */
  listen: string[];
  port: number;
  /** Where this host's receiver listens. */
  receiver: { host: string; port: number };
  /** Restore with IP_TRANSPARENT (default true). */
  transparent?: boolean;
  receiverTimeoutMs?: number;
  chunkBytes: number;
  intervalMs: number;
}

export interface ConnectionStatus {
  id: number;
  received: number;
  sent: number;
  firstBad: number;
}

export type Fault =
  | { kind: 'kill-on-image'; count: number } // SIGKILL when the count-th IMAGE arrives, before restoring it
  | { kind: 'kill-on-restored'; count: number } // SIGKILL after the count-th restore, before confirming it
  | { kind: 'kill-on-activate' } // SIGKILL when ACTIVATE arrives (after the address moved)
  | { kind: 'pause-on-restored'; count: number; ms: number } // block the process after the count-th restore
  | { kind: 'cut-on-restored'; count: number; port: number } // drop the control port (nftables) after the count-th restore
  | { kind: 'none' };

interface State {
  id: number;
  key: string;
  received: number;
  sent: number;
  firstBad: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as NodeConfig;
// The key comes through the environment, readable only by this user, not argv (/proc/PID/cmdline
// is readable by everyone).
const KEY = process.env.TCP_REPAIR_SOAK_KEY ?? '';
const connections = new Map<net.Socket, { state: State; verifier: StreamVerifier }>();
let pumping = true;
let migrating = false;
let fault: Fault = { kind: 'none' };

function send(message: unknown): void {
  process.send?.(message);
}

function adopt(socket: net.Socket, state: State): void {
  const verifier = new StreamVerifier(Buffer.from(state.key, 'hex'), 0, state.received);
  verifier.firstBad = state.firstBad;
  const entry = { state, verifier };
  connections.set(socket, entry);
  socket.setNoDelay(true);
  socket.on('error', () => {});
  socket.on('close', () => connections.delete(socket));
  socket.on('data', (chunk: Buffer) => {
    verifier.push(chunk);
    state.received = verifier.offset;
    state.firstBad = verifier.firstBad;
  });
}

/** A new connection: read the header line, then hand over to the stream. */
function accept(socket: net.Socket): void {
  let head = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const newline = head.indexOf(10);
    if (newline < 0) return;
    socket.off('data', onData);
    const [, id, key] = /^SOAK (\d+) ([0-9a-f]{64})$/.exec(head.subarray(0, newline).toString('latin1')) ?? [];
    if (id === undefined || key === undefined) {
      socket.destroy();
      return;
    }
    adopt(socket, { id: Number(id), key, received: 0, sent: 0, firstBad: -1 });
    const rest = head.subarray(newline + 1);
    if (rest.length > 0) socket.emit('data', rest);
  };
  socket.on('data', onData);
  socket.on('error', () => {});
}

function pump(): void {
  if (!pumping || migrating) return;
  for (const [socket, { state }] of connections) {
    if (socket.destroyed || socket.writableLength > 4 * config.chunkBytes) continue;
    socket.write(streamBytes(Buffer.from(state.key, 'hex'), 1, state.sent, config.chunkBytes));
    state.sent += config.chunkBytes;
  }
}

function statuses(): ConnectionStatus[] {
  return [...connections.values()].map(({ state }) => ({ id: state.id, received: state.received, sent: state.sent, firstBad: state.firstBad }));
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

function block(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function cutControl(port: number): void {
  const table = 'tcp_repair_cut';
  execFileSync('nft', ['-f', '-'], {
    input: [
      `add table inet ${table}`,
      `add chain inet ${table} in { type filter hook input priority -30; }`,
      `add chain inet ${table} out { type filter hook output priority -30; }`,
      `add rule inet ${table} in tcp dport ${port} drop`,
      `add rule inet ${table} out tcp sport ${port} drop`,
    ].join('\n') + '\n',
  });
}

function armFaults(receiver: Receiver): void {
  let images = 0;
  let restored = 0;
  receiver.on('image', () => {
    images++;
    if (fault.kind === 'kill-on-image' && images === fault.count) process.kill(process.pid, 'SIGKILL');
  });
  receiver.on('restored', (id: number) => {
    restored++;
    send({ event: 'restored', id });
    if (fault.kind === 'kill-on-restored' && restored === fault.count) process.kill(process.pid, 'SIGKILL');
    if (fault.kind === 'pause-on-restored' && restored === fault.count) block(fault.ms);
    // Synchronous, so the confirmation that follows already meets the cut.
    if (fault.kind === 'cut-on-restored' && restored === fault.count) cutControl(fault.port);
  });
  receiver.on('activate', () => {
    if (fault.kind === 'kill-on-activate') process.kill(process.pid, 'SIGKILL');
  });
  // A new session starts the counts again.
  receiver.on('session', () => {
    images = 0;
    restored = 0;
  });
}

/** Repair-mode sockets holding 4-tuples, so that restoring them here fails (port taken). */
const occupied: number[] = [];
function occupy(tuples: Array<{ local: { address: string; port: number }; peer: { address: string; port: number } }>): void {
  for (const { local, peer } of tuples) {
    const family = local.address.includes(':') ? 6 : 4;
    const fd = ll.createSocket(family);
    occupied.push(fd);
    ll.repairOn(fd);
    ll.setTransparent(fd, family);
    ll.attachFreezeFilter(fd);
    ll.bind(fd, family, local.address, local.port);
    ll.connect(fd, family, peer.address, peer.port); // repair mode: no SYN, nothing sent
  }
}

type Command =
  | { cmd: 'migrate'; to: { host: string; port: number }; key?: string; handback?: boolean; timeoutMs?: number }
  | { cmd: 'handover-done' } | { cmd: 'handover-failed'; error: string } | { cmd: 'handback-done' } | { cmd: 'handback-failed'; error: string }
  | { cmd: 'status' } | { cmd: 'quiesce' } | { cmd: 'fault'; fault: Fault }
  | { cmd: 'occupy'; tuples: Parameters<typeof occupy>[0] } | { cmd: 'release-occupied' } | { cmd: 'exit' };

let handoverWaiter: ((error?: string) => void) | null = null;
let handbackWaiter: ((error?: string) => void) | null = null;

async function runMigration(command: Extract<Command, { cmd: 'migrate' }>): Promise<void> {
  migrating = true;
  const sockets = [...connections.keys()];
  try {
    const report = await migrate(sockets, {
      to: command.to,
      key: command.key ?? KEY,
      timeoutMs: command.timeoutMs ?? hangGuardMs(10000),
      meta: (socket) => ({ ...connections.get(socket)!.state }),
      handover: () => new Promise<void>((resolve, reject) => {
        handoverWaiter = (error) => (error ? reject(new Error(error)) : resolve());
        send({ handover: true });
      }),
      ...(command.handback ? { handback: () => new Promise<void>((resolve, reject) => {
        handbackWaiter = (error) => (error ? reject(new Error(error)) : resolve());
        send({ handback: true });
      }) } : {}),
    });
    for (const m of report.moved) connections.delete(m.socket);
    const e = report.error as (Error & { code?: string }) | undefined;
    send({
      migrated: {
        moved: report.moved.length,
        stayed: report.stayed.map((s) => s.code),
        error: e ? { code: e.code ?? 'ERR_MIGRATION', message: e.message } : undefined,
        timings: report.timings,
        held: heldCount(),
      },
    });
  } finally {
    migrating = false;
  }
}

async function main(): Promise<void> {
  const receiver = createReceiver(
    { host: config.receiver.host, port: config.receiver.port, key: KEY, transparent: config.transparent !== false, timeoutMs: config.receiverTimeoutMs ?? hangGuardMs(30000) },
    (socket, meta) => adopt(socket, meta as unknown as State),
  );
  receiver.on('sessionError', (error: Error & { code?: string }) => send({ event: 'sessionError', code: error.code, message: error.message }));
  armFaults(receiver);
  await receiver.listen();
  const servers = await Promise.all(config.listen.map((address) => new Promise<net.Server>((resolve, reject) => {
    const server = net.createServer(accept);
    server.once('error', reject);
    server.listen(config.port, address, () => resolve(server));
  })));
  setInterval(pump, config.intervalMs);
  process.on('message', (message: Command) => {
    switch (message.cmd) {
      case 'migrate':
        runMigration(message).catch((error: unknown) => send({ fatal: (error as Error).stack }));
        return;
      case 'handover-done': handoverWaiter?.(); return;
      case 'handover-failed': handoverWaiter?.(message.error); return;
      case 'handback-done': handbackWaiter?.(); return;
      case 'handback-failed': handbackWaiter?.(message.error); return;
      case 'status': send({ status: { connections: statuses(), held: heldCount(), fds: openFds(), migrating } }); return;
      case 'quiesce': pumping = false; send({ quiesced: statuses() }); return;
      case 'fault': fault = message.fault; send({ faultSet: true }); return;
      case 'occupy':
        try {
          occupy(message.tuples);
          send({ occupied: occupied.length });
        } catch (error) {
          send({ fatal: (error as Error).stack });
        }
        return;
      case 'release-occupied': for (const fd of occupied.splice(0)) ll.closeFd(fd); send({ released: true }); return;
      case 'exit': for (const s of servers) s.close(); receiver.close().finally(() => process.exit(0)); return;
    }
  });
  send({ ready: { pid: process.pid, fds: openFds() } });
}

main().catch((error: unknown) => {
  send({ fatal: (error as Error).stack ?? String(error) });
  process.exit(1);
});
