// The application state sent with a connection (meta) must match the image exactly. migrate()
// used to take it before checkpoint(), which first flushes Node's pending writes: while it
// waited, the application kept receiving data, so the state on the destination lagged behind
// the bytes the image holds and the receiving application lost count. Now meta is taken once
// the socket is frozen. This test makes that window wide (pending writes to a peer that does
// not read, data flowing in the other way) and checks the count survives the move exactly.
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { createReceiver, migrate } from 'tcp-repair';
import { scaled } from '../helpers/time-scale.js';

const KEY = 'meta-at-freeze-key-0123456789';

t.test('meta is taken at the freeze: no byte is counted twice or missed', async (t) => {
  let counted = 0;
  const receiver = createReceiver({ host: '127.0.0.1', port: 0, key: KEY, transparent: false }, (socket, meta) => {
    counted = (meta as { received: number }).received;
    socket.on('data', (d: Buffer) => (counted += d.length));
    moved = socket;
  });
  let moved: net.Socket | undefined;
  await receiver.listen();
  t.teardown(() => receiver.close());

  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  const [socket] = await accepted;
  t.teardown(() => { client.destroy(); socket.destroy(); moved?.destroy(); server.close(); });

  let received = 0;
  socket.on('data', (d: Buffer) => (received += d.length));
  // The client never reads: the server's writes pile up in Node, so checkpoint() must flush.
  const handle = (client as unknown as { _handle: { readStop(): void; reading: boolean } })._handle;
  handle.readStop();
  handle.reading = true;
  for (let i = 0; i < 64; i++) socket.write(Buffer.alloc(256 * 1024, i));
  let sent = 0;
  const pump = setInterval(() => {
    for (let i = 0; i < 8; i++) client.write(Buffer.alloc(1024, 1));
    sent += 8 * 1024;
  }, 1);
  await new Promise((r) => setTimeout(r, 100));
  t.ok(socket.writableLength > 0, `writes pending in Node at the move (${socket.writableLength} bytes)`);

  // migrate()'s default 10 s per step, as a hang guard stretched in emulated guests (time-scale.ts):
  // 6.12 under TCG needed longer to carry the 14 MB of pending writes.
  const report = await migrate([socket], { to: { host: '127.0.0.1', port: receiver.address().port }, key: KEY, timeoutMs: scaled(10_000), meta: () => ({ received }) });
  t.equal(report.error, undefined, 'migrated');
  t.equal(report.moved.length, 1);
  await new Promise((r) => setTimeout(r, 50));
  clearInterval(pump);
  const deadline = Date.now() + scaled(5000); // a hang guard (time-scale.ts)
  while (counted < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(counted, sent, `the destination counted exactly the ${sent} bytes the client sent`);
});
