// Scaffolding for the host-to-host examples, not part of tcp-repair's API: it stands in for your
// machines. Three "hosts" (client, host-a, host-b) are network namespaces on a bridge, built by
// the project's test topology (198.18.0.0/15 addresses only, removed afterwards). Each role of an
// example runs as its own node process inside its host and talks to the orchestrator over IPC.
//
// In a real deployment host-a and host-b are two machines, and `handover` is whatever moves the
// service address between them (a floating IP, a VRRP failover, an ARP announcement).
import { randomBytes } from 'node:crypto';
import { createTopology } from 'tcp-repair/topology';

/** Where host-b's receiver listens for migrations (on its own address, not the service's). */
const CONTROL_PORT = 7100;

/** Builds the hosts, runs `body(topology)`, and always removes the hosts again. */
export async function withHosts(body) {
  if (process.getuid?.() !== 0) throw new Error('the example builds network namespaces: run it as root');
  const topology = await createTopology({ prefix: 'example', ipv6: false });
  try {
    return await body(topology);
  } finally {
    topology.destroy();
  }
}

/** Starts `node <script> <role> <config JSON>` inside a host, with an IPC channel. */
export function startRole(topology, host, script, role, config) {
  return topology.spawnIn(host, process.execPath, [script, role, JSON.stringify(config)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/**
 * Starts an example's three roles, each as `node <script> <role> <config>` in its own host:
 * host-b first (its receiver must listen before anything can move to it), then host-a, each once
 * the one before reported 'ready', then the client. Every role gets one config: `service` (the
 * service address), `control` (host-b's receiver), `key` (a fresh pre-shared key), and `extra`.
 */
export async function startRoles(topology, script, extra = {}) {
  const config = {
    service: topology.service.ipv4,
    control: { host: topology.hostB.underlay.ipv4, port: CONTROL_PORT },
    key: randomBytes(32).toString('hex'),
    ...extra,
  };
  const hostB = startRole(topology, 'host-b', script, 'host-b', config);
  await nextMessage(hostB, 'ready');
  const hostA = startRole(topology, 'host-a', script, 'host-a', config);
  await nextMessage(hostA, 'ready');
  const client = startRole(topology, 'client', script, 'client', config);
  return { hostA, hostB, client };
}

/**
 * The orchestrator's side of a move: tells host-a to migrate, moves the service address to
 * host-b when host-a's migrate() asks for it (see `handover`), and resolves with host-a's
 * 'migrated' report and how long the address move took (ms).
 */
export async function moveHostAToB(topology, hostA) {
  hostA.send({ type: 'migrate' });
  await nextMessage(hostA, 'handover');
  const move = await topology.moveServiceAddress('host-a', 'host-b');
  hostA.send({ type: 'handover-done' });
  return { migrated: await nextMessage(hostA, 'migrated'), addressMoveMs: move.total };
}

/** Resolves with the next message of `type` from a role; rejects if it reports failure or exits. */
export function nextMessage(child, type, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`timed out waiting for '${type}'`)), timeoutMs);
    const onMessage = (message) => {
      if (message.type === 'failed') finish(new Error(message.reason));
      else if (message.type === type) finish(null, message);
    };
    const onExit = (code) => finish(new Error(`role exited (${code}) before '${type}'`));
    function finish(error, message) {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(message);
    }
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/**
 * The child side: runs the role's function with its config; whatever it throws goes to the
 * orchestrator as a 'failed' message instead of dying silently.
 */
export async function runRole(roles) {
  const [role, config] = [process.argv[2], JSON.parse(process.argv[3] ?? '{}')];
  try {
    await roles[role](config);
  } catch (error) {
    process.send({ type: 'failed', reason: `${role}: ${error.stack ?? error}` });
    process.exitCode = 1;
  }
}

/**
 * An example file's entry point: run as a role (`node <script> <role> <config>`), it runs that
 * role; run plainly, it runs `main` (the orchestrator) and exits 1 with FAILED on any error.
 */
export async function runExample(roles, main) {
  if (process.argv[2] in roles) return runRole(roles);
  try {
    await main();
  } catch (error) {
    console.error(`FAILED: ${error.message}`);
    process.exitCode = 1;
  }
}

const inbox = [];
const waiters = [];
process.on('message', (message) => {
  const i = waiters.findIndex((w) => w.name === message.type);
  if (i >= 0) waiters.splice(i, 1)[0].resolve(message);
  else inbox.push(message);
});

/** In a role: resolves with the orchestrator's next command `name` (queued if it came early). */
export function command(name) {
  const i = inbox.findIndex((m) => m.type === name);
  if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
  return new Promise((resolve) => waiters.push({ name, resolve }));
}

/** Sends a message to the orchestrator. */
export function report(type, fields = {}) {
  process.send({ type, ...fields });
}

/**
 * In host-a's role, migrate()'s `handover` option: asks the orchestrator to move the service
 * address to host-b and resolves once it has. In a real deployment this is your failover step.
 */
export async function handover() {
  report('handover');
  await command('handover-done');
}
