// A WebSocket server built on the `ws` package whose open WebSockets move to another host while
// clients keep talking. Each client sends a numbered message every few milliseconds and checks
// every reply: in order, none missing, and carrying the per-connection message counter that the
// server keeps as state and that travels with the connection in `meta`. Midway, every WebSocket
// moves from host-a to host-b (migrate()/createReceiver()) with the service address; on host-b
// each restored socket becomes a WebSocket again with ws's setSocket(), and the conversation
// simply goes on. At the end each client closes with a clean close handshake, now with host-b.
//
//   node examples/ws-move.mjs [connections]
//
// Needs root: the hosts are network namespaces (see examples/support/hosts.mjs).
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { migrate, createReceiver } from 'tcp-repair';
import { command, handover, moveHostAToB, nextMessage, report, runExample, startRoles, withHosts } from './support/hosts.mjs';

const PORT = 8080;
const MAX_PAYLOAD = 64 * 1024;
const SEND_EVERY_MS = 5;

// --- the server, the same on both hosts ---------------------------------------------------------

/** What the server does with a WebSocket, new or moved: answer each message, counting them. */
function serve(ws, state, host) {
  ws.on('message', (data) => {
    state.messages += 1;
    const { seq } = JSON.parse(String(data));
    ws.send(JSON.stringify({ seq, messages: state.messages, host }));
  });
  ws.on('error', () => {});
}

/**
 * Stops ws reading between two frames. ws.pause() pauses the socket: bytes that arrive from now
 * on wait in the socket's read buffer, which checkpoint() carries over. A frame that ws has only
 * partly received cannot move (its receiver holds the first part), so wait until there is none.
 * `_receiver._bufferedBytes` is ws-internal: check it again when upgrading ws.
 */
async function pauseBetweenFrames(ws) {
  for (;;) {
    ws.pause();
    if (ws._receiver._bufferedBytes === 0) return;
    ws.resume();
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

async function hostA({ service, control, key }) {
  const states = new Map(); // net.Socket -> { ws, state }
  const httpServer = http.createServer();
  const wss = new WebSocketServer({ server: httpServer, maxPayload: MAX_PAYLOAD });
  wss.on('connection', (ws) => {
    const state = { messages: 0 };
    states.set(ws._socket, { ws, state });
    serve(ws, state, 'host-a');
  });
  await new Promise((resolve) => httpServer.listen(PORT, service, resolve));
  report('ready');
  await command('migrate');

  const entries = [...states.values()];
  await Promise.all(entries.map(({ ws }) => pauseBetweenFrames(ws)));
  const result = await migrate(
    entries.map(({ ws }) => ws._socket),
    {
      to: control,
      key,
      meta: (socket) => states.get(socket).state,
      handover, // the orchestrator moves the service address to host-b
    },
  );
  // A connection that stayed (rolled back) simply carries on here.
  for (const { socket } of result.stayed) states.get(socket).ws.resume();
  report('migrated', { moved: result.moved.length, stayed: result.stayed.map((s) => s.reason), error: result.error?.message });
}

async function hostB({ control, key }) {
  const receiver = createReceiver({ ...control, key }, (socket, meta) => {
    // The socket is an upgraded WebSocket connection already: give it to a server-side WebSocket
    // as WebSocketServer would after a handshake (no handshake bytes are left over: empty head).
    const ws = new WebSocket(null, undefined, {});
    ws.setSocket(socket, Buffer.alloc(0), { maxPayload: MAX_PAYLOAD, allowSynchronousEvents: true });
    serve(ws, meta, 'host-b');
  });
  await receiver.listen();
  report('ready');
}

// --- the clients ---------------------------------------------------------------------------------

/**
 * One WebSocket conversation: a numbered message every few ms, every reply checked. `finished`
 * resolves when the socket closed; `finish()` stops sending and closes once every reply is in;
 * `answered` resolves at the first reply (or when the conversation ended without one).
 */
function converse(url, onFirstReplyFromB) {
  const ws = new WebSocket(url);
  let sent = 0;
  let expected = 0;
  const hosts = { 'host-a': 0, 'host-b': 0 };
  let onFirstReply;
  const firstReply = new Promise((resolve) => (onFirstReply = resolve));
  let sender;
  const finished = new Promise((resolve, reject) => {
    const fail = (reason) => {
      clearInterval(sender);
      ws.terminate();
      reject(new Error(reason));
    };
    ws.on('open', () => {
      sender = setInterval(() => ws.send(JSON.stringify({ seq: sent++ })), SEND_EVERY_MS);
    });
    ws.on('message', (data) => {
      const { seq, messages, host } = JSON.parse(String(data));
      if (seq !== expected) return fail(`reply ${seq} where ${expected} was due`);
      if (messages !== seq + 1) return fail(`server counted ${messages} messages at reply ${seq}`);
      if (host === 'host-a' && hosts['host-b'] > 0) return fail('host-a answered after host-b had');
      if (host === 'host-b' && hosts['host-b'] === 0) onFirstReplyFromB();
      hosts[host] += 1;
      expected += 1;
      onFirstReply();
      if (closing && expected === sent) ws.close(1000, 'done');
    });
    ws.on('error', (error) => fail(error.message));
    ws.on('close', (code) => {
      clearInterval(sender);
      resolve({ code, sent, replies: expected, hosts });
    });
  });
  let closing = false;
  const finish = () => {
    clearInterval(sender);
    closing = true;
    // The close handshake runs with host-b, once every reply is in.
    if (expected === sent) ws.close(1000, 'done');
  };
  return { finished, finish, answered: Promise.race([firstReply, finished]) };
}

async function client({ service, connections }) {
  let answeredByB = 0;
  const conversations = Array.from({ length: connections }, () =>
    converse(`ws://${service}:${PORT}/`, () => {
      if (++answeredByB === connections) report('all-answered-by-b');
    }),
  );
  // Talking means answered: on a slow machine 300 ms may pass before a WebSocket has opened.
  await Promise.all(conversations.map((c) => c.answered));
  await new Promise((resolve) => setTimeout(resolve, 300));
  report('talking');
  await command('finish');
  for (const c of conversations) c.finish();
  report('done', { results: await Promise.all(conversations.map((c) => c.finished)) });
}

// --- the orchestrator ----------------------------------------------------------------------------

async function main(connections) {
  await withHosts(async (topology) => {
    const { hostA, client: c } = await startRoles(topology, fileURLToPath(import.meta.url), { connections });
    await nextMessage(c, 'talking');
    console.log(`client: ${connections} WebSockets exchanging a message every ${SEND_EVERY_MS} ms with host-a`);

    const answeredByB = nextMessage(c, 'all-answered-by-b');
    const { migrated, addressMoveMs } = await moveHostAToB(topology, hostA);
    console.log(`host-a: ${migrated.moved} WebSockets moved to host-b, ${migrated.stayed.length} stayed; address moved in ${addressMoveMs.toFixed(1)} ms`);
    if (migrated.error) throw new Error(`migration failed: ${migrated.error}`);
    await answeredByB;
    await new Promise((resolve) => setTimeout(resolve, 300)); // keep talking with host-b a while

    c.send({ type: 'finish' });
    const { results } = await nextMessage(c, 'done');
    for (const [i, r] of results.entries()) {
      console.log(`  ws ${i}: ${r.replies} of ${r.sent} messages answered in order (host-a ${r.hosts['host-a']}, host-b ${r.hosts['host-b']}), closed ${r.code}`);
    }
    const intact = results.every((r) => r.replies === r.sent && r.hosts['host-a'] > 0 && r.hosts['host-b'] > 0 && r.code === 1000);
    if (migrated.moved !== connections || !intact) throw new Error('not every WebSocket moved intact');
    console.log('ok');
  });
}

await runExample({ 'host-a': hostA, 'host-b': hostB, client }, () => main(Number(process.argv[2] ?? 4)));
