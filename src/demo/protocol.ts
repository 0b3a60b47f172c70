/**
 * The demo's application protocol, served identically on host-a and host-b. A connection
 * starts with a line naming its kind:
 *   "STREAM\n": every following byte is echoed (the client checks sha256 of sent vs echoed);
 *   "RR\n": request/response lines "REQ <n> <text>\n" → "RES <n> <sha256(text)>\n".
 *   anything starting "GET ": minimal HTTP/1.1 keep-alive, so that stock clients (curl) can be
 *   moved too; each request is answered with the host that served it.
 * The per-connection state is plain JSON so it can travel with the migrated socket as meta.
 */
import { createHash } from 'node:crypto';
import type net from 'node:net';

export interface ConnectionState {
  kind: 'pending' | 'stream' | 'rr' | 'http';
  /** An incomplete header or request line. */
  partial: string;
  echoed: number;
  answered: number;
}

export function newConnectionState(): ConnectionState {
  return { kind: 'pending', partial: '', echoed: 0, answered: 0 };
}

const states = new WeakMap<net.Socket, ConnectionState>();

export function stateOf(socket: net.Socket): ConnectionState {
  return states.get(socket) ?? newConnectionState();
}

/** Serves one connection from `state` on (a new one, or one that just arrived by migration). */
export function serve(socket: net.Socket, state: ConnectionState): void {
  states.set(socket, state);
  socket.setNoDelay(true);
  socket.on('error', () => {});
  socket.on('data', (chunk: Buffer) => {
    if (state.kind === 'stream') {
      state.echoed += chunk.length;
      socket.write(chunk);
      return;
    }
    let text = state.partial + chunk.toString('latin1');
    if (state.kind === 'pending') {
      const newline = text.indexOf('\n');
      if (newline < 0) {
        state.partial = text;
        return;
      }
      const first = text.slice(0, newline);
      state.kind = first === 'STREAM' ? 'stream' : first.startsWith('GET ') ? 'http' : 'rr';
      if (state.kind !== 'http') text = text.slice(newline + 1);
      if (state.kind === 'stream') {
        state.partial = '';
        if (text.length > 0) {
          state.echoed += text.length;
          socket.write(Buffer.from(text, 'latin1'));
        }
        return;
      }
    }
    if (state.kind === 'http') {
      const requests = text.split('\r\n\r\n');
      state.partial = requests.pop() ?? '';
      for (const request of requests) {
        state.answered++;
        const body = `served by ${process.env.TCP_REPAIR_DEMO_HOST ?? 'demo'}: ${request.split(' ')[1] ?? '/'}\n`;
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n${body}`);
      }
      return;
    }
    const lines = text.split('\n');
    state.partial = lines.pop() ?? '';
    for (const line of lines) {
      const [, n, body] = /^REQ (\d+) (.*)$/.exec(line) ?? [];
      if (n === undefined) continue;
      state.answered++;
      socket.write(`RES ${n} ${createHash('sha256').update(body ?? '').digest('hex')}\n`);
    }
  });
  socket.on('end', () => socket.end());
}
