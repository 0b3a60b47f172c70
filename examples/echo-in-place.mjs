// An echo server whose live connections are checkpointed and restored in place, again and again,
// while clients stream through them. Each client checks that it got back exactly the bytes it
// sent (SHA-256 of both directions): nothing lost, duplicated or reordered across the restores.
//
//   node examples/echo-in-place.mjs [connections] [restoresPerConnection]
//
// Needs CAP_NET_ADMIN (run as root, or inside `unshare -Urn`); talks over 127.0.0.1 only.
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { checkpoint, restore, encodeImage, decodeImage } from 'tcp-repair';

const CONNECTIONS = Number(process.argv[2] ?? 3);
const RESTORES = Number(process.argv[3] ?? 10);

// --- the server: echo, plus a set of its live connections --------------------------------------

const live = new Set();

/** What the application does with a connection; called for new and restored sockets alike. */
function serveEcho(socket) {
  live.add(socket);
  socket.on('data', (chunk) => socket.write(chunk));
  socket.on('close', () => live.delete(socket));
  socket.on('error', () => {});
}

/** Freezes a connection, serialises it, and brings it back as a new net.Socket. */
async function restoreInPlace(socket) {
  const image = await checkpoint(socket); // the socket is frozen from here on
  const bytes = encodeImage(image); // what you would store or send elsewhere
  live.delete(socket);
  // restore() takes over from the frozen original (this process still holds it) without a gap.
  serveEcho(restore(decodeImage(bytes)));
  return bytes.length;
}

const server = net.createServer(serveEcho);
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address();

// --- the clients: stream random bytes until told to stop, hash what goes out and comes back ---

let streaming = true;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function runClient() {
  return new Promise((resolve, reject) => {
    const sent = createHash('sha256');
    const echoed = createHash('sha256');
    let sentBytes = 0;
    let echoedBytes = 0;
    const socket = net.connect(port, '127.0.0.1', async () => {
      while (streaming) {
        const chunk = randomBytes(16 * 1024);
        sent.update(chunk);
        sentBytes += chunk.length;
        if (!socket.write(chunk)) await once(socket, 'drain');
        await sleep(2); // a steady stream, not one burst
      }
      socket.end(); // the server echoes everything, then ends too
    });
    socket.on('data', (chunk) => {
      echoed.update(chunk);
      echoedBytes += chunk.length;
    });
    socket.on('end', () => {
      const ok = echoedBytes === sentBytes && sent.digest('hex') === echoed.digest('hex');
      resolve({ ok, bytes: sentBytes });
    });
    socket.on('error', reject);
  });
}

// --- run: restore every live connection in place while the clients stream ---------------------

const clients = Array.from({ length: CONNECTIONS }, runClient);
while (live.size < CONNECTIONS) await sleep(5);
let restores = 0;
let imageBytes = 0;
for (let round = 0; round < RESTORES; round++) {
  await sleep(20); // let some traffic through between rounds
  for (const socket of [...live]) {
    imageBytes += await restoreInPlace(socket);
    restores++;
  }
}
streaming = false;
const results = await Promise.all(clients);
server.close();

const verified = results.filter((r) => r.ok).length;
console.log(`${CONNECTIONS} connections, ${restores} restores in place (images ${Math.round(imageBytes / restores)} bytes on average)`);
const mib = (results.reduce((sum, r) => sum + r.bytes, 0) / 2 ** 20).toFixed(1);
console.log(`${verified} of ${CONNECTIONS} clients got back exactly what they sent (${mib} MiB in all)`);
if (verified !== CONNECTIONS || restores < CONNECTIONS * RESTORES) {
  console.error('FAILED');
  process.exitCode = 1;
} else {
  console.log('ok');
}
