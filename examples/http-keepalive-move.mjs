// An HTTP keep-alive server whose idle connections move to another host. The client keeps its
// connections open (http.Agent keepAlive); between requests every server-side connection moves
// from host-a to host-b with migrate()/createReceiver(), together with the service address. The
// client checks that its next requests go over the very same TCP connections (same local ports,
// reused sockets), are answered by host-b, and that each connection's request counter, kept by
// the server as per-connection state and carried in `meta`, went on counting.
//
//   node examples/http-keepalive-move.mjs
//
// Needs root: the hosts are network namespaces (see examples/support/hosts.mjs).
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { migrate, createReceiver } from 'tcp-repair';
import { command, handover, moveHostAToB, nextMessage, report, runExample, startRoles, withHosts } from './support/hosts.mjs';

const PORT = 8080;
const CONNECTIONS = 4;
const ROUNDS = 3;

// --- the server, the same on both hosts ---------------------------------------------------------

/** Per-connection state: what a move must carry along. */
const stateOf = new WeakMap();

function createServer(host) {
  const server = http.createServer({ keepAlive: true, keepAliveTimeout: 60_000 }, (req, res) => {
    const state = stateOf.get(req.socket);
    state.requests += 1;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ host, requests: state.requests }));
  });
  server.on('connection', (socket) => {
    if (!stateOf.has(socket)) stateOf.set(socket, { requests: 0 });
  });
  return server;
}

async function hostA({ service, control, key }) {
  const server = createServer('host-a');
  const sockets = new Set();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(PORT, service, resolve));
  report('ready');
  await command('migrate');
  // Only idle connections can move: an http.Server feeds a busy one to its parser (see
  // docs/limitations.md). The client is between requests now, so every socket is idle.
  const result = await migrate(sockets, {
    to: control,
    key,
    meta: (socket) => stateOf.get(socket),
    handover, // the orchestrator moves the service address to host-b
  });
  report('migrated', { moved: result.moved.length, stayed: result.stayed.map((s) => s.reason), error: result.error?.message });
}

async function hostB({ control, key }) {
  const server = createServer('host-b');
  const receiver = createReceiver({ ...control, key }, (socket, meta) => {
    stateOf.set(socket, meta); // the state travelled with the connection
    server.emit('connection', socket); // the documented way to hand a socket to a server
  });
  await receiver.listen();
  report('ready');
}

// --- the client ----------------------------------------------------------------------------------

async function client({ service }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const lastCount = new Map(); // client port -> the server's request counter for that connection
  const check = (phase, expectedHost) =>
    Promise.all(
      Array.from({ length: CONNECTIONS }, () =>
        new Promise((resolve, reject) => {
          const req = http.get({ host: service, port: PORT, path: '/', agent }, (res) => {
            let body = '';
            res.on('data', (chunk) => (body += chunk));
            res.on('end', () => {
              const { host, requests } = JSON.parse(body);
              const port = req.socket.localPort;
              const previous = lastCount.get(port) ?? 0;
              if (host !== expectedHost) reject(new Error(`${phase}: answered by ${host}, expected ${expectedHost}`));
              else if (requests !== previous + 1) reject(new Error(`${phase}: connection ${port} counted ${requests} after ${previous}`));
              else if (phase === 'after' && !lastCount.has(port)) reject(new Error(`after: a new connection (${port})`));
              else resolve(lastCount.set(port, requests));
            });
          });
          req.on('error', reject);
        }),
      ),
    );
  for (let round = 0; round < ROUNDS; round++) await check('before', 'host-a');
  const portsBefore = [...lastCount.keys()].sort();
  report('idle', { ports: portsBefore.length });
  await command('continue');
  for (let round = 0; round < ROUNDS; round++) await check('after', 'host-b');
  const portsAfter = [...lastCount.keys()].sort();
  report('done', { samePorts: JSON.stringify(portsBefore) === JSON.stringify(portsAfter), counts: [...lastCount.values()] });
  agent.destroy();
}

// --- the orchestrator: builds the hosts, runs the roles, prints the outcome ---------------------

async function main() {
  await withHosts(async (topology) => {
    const { hostA, client: c } = await startRoles(topology, fileURLToPath(import.meta.url));
    const idle = await nextMessage(c, 'idle');
    console.log(`client: ${idle.ports} keep-alive connections, ${ROUNDS} requests each answered by host-a; now idle`);

    const { migrated, addressMoveMs } = await moveHostAToB(topology, hostA);
    console.log(`host-a: ${migrated.moved} connections moved to host-b, ${migrated.stayed.length} stayed; address moved in ${addressMoveMs.toFixed(1)} ms`);
    if (migrated.error) throw new Error(`migration failed: ${migrated.error}`);

    c.send({ type: 'continue' });
    const done = await nextMessage(c, 'done');
    console.log(`client: ${ROUNDS} more requests per connection answered by host-b over the same connections: ${done.samePorts}; counters ${done.counts.join(', ')}`);
    if (migrated.moved !== CONNECTIONS || !done.samePorts || done.counts.some((n) => n !== 2 * ROUNDS)) throw new Error('not every connection moved intact');
    console.log('ok');
  });
}

await runExample({ 'host-a': hostA, 'host-b': hostB, client }, main);
