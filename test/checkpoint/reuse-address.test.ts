/**
 * SO_REUSEADDR as the application set it. Repair mode forces address reuse, and getsockopt then
 * reports it on (2) whatever the application chose: the checkpoint must read the option before
 * entering repair mode, or every image would record reuseAddress: true and a restored socket
 * would keep a reuse its application never asked for.
 */
import t from 'tap';
import { checkpoint, release, restore, resume, lowlevel, socketFd } from 'tcp-repair';
import { connectedPair } from '../helpers/streams.js';

t.test('a socket without SO_REUSEADDR checkpoints as reuseAddress false, one with it as true', async (t) => {
  const pair = await connectedPair();
  t.teardown(() => pair.close());
  const { client, srv } = pair;
  t.equal(lowlevel.getOption(socketFd(client), 'SO_REUSEADDR'), 0, 'the client socket has SO_REUSEADDR off');

  const without = await checkpoint(client);
  t.equal(without.socketOptions.reuseAddress, false, 'recorded off, although repair mode reports it on');
  t.not(lowlevel.getOption(socketFd(client), 'SO_REUSEADDR'), 0, 'while frozen the kernel reports the forced reuse');
  resume(without);
  t.equal(lowlevel.getOption(socketFd(client), 'SO_REUSEADDR'), 0, 'resume gives the application its value back');

  lowlevel.setOption(socketFd(client), 'SO_REUSEADDR', true);
  const withIt = await checkpoint(client);
  t.equal(withIt.socketOptions.reuseAddress, true, 'recorded on when the application set it');
  resume(withIt);

  const accepted = await checkpoint(srv);
  t.equal(accepted.socketOptions.reuseAddress, true, 'an accepted socket inherits the listener value (Node sets it)');
  resume(accepted);
});

t.test('the restored socket gets the recorded value back', async (t) => {
  const pair = await connectedPair();
  t.teardown(() => pair.close());
  const image = await checkpoint(pair.client);
  t.equal(image.socketOptions.reuseAddress, false);
  const restored = restore(image);
  t.teardown(() => restored.destroy());
  t.equal(lowlevel.getOption(socketFd(restored), 'SO_REUSEADDR'), 0, 'off after restore, as recorded');
  release(image);
});
