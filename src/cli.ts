#!/usr/bin/env node
/** The tcp-repair command line: probe, inspect, demo. */
import { parseArgs } from 'node:util';
import { probe, type ProbeReport } from './probe.js';
import { describeImage, describeLive, inspectLive, readImageFile } from './cli/inspect.js';

const HELP: Record<string, string> = {
  main: `Usage: tcp-repair <command> [options]

Commands:
  probe              which TCP_REPAIR features this kernel and privilege level offer
  inspect <image>    decode and explain a socket image file
  inspect --pid P --fd N
                     the live TCP state of any process's socket (pidfd_getfd)
  demo               build test hosts (network namespaces), move live connections between them,
                     print a report (needs root)

Run 'tcp-repair <command> --help' for a command's options.`,
  probe: `Usage: tcp-repair probe [--json]

Tries each feature on a throwaway socket (never reads the kernel version) and prints a table:
feature, available, what it enables, the fallback when missing.
  --json     machine-readable output`,
  inspect: `Usage: tcp-repair inspect <image-file> [--json]
       tcp-repair inspect --pid P --fd N [--repair] [--json]

  <image-file>  an image written by encodeImage(): every field decoded and explained
  --pid, --fd   copy fd N of process P (pidfd_getfd; needs ptrace rights over P) and read its
                TCP state: addresses, state, queues, options, RTT, windows, counters
  --repair      also read sequence numbers and the repair window, which needs repair mode for
                an instant: the owner's reads/writes fail (EPERM/EINVAL) if they hit that instant
  --json        machine-readable output`,
  demo: `Usage: tcp-repair demo [--connections N] [--streams N] [--bytes N] [--no-ipv6] [--overlay vxlan] [--json]

Builds three network namespaces (client, host-a, host-b), starts a service on host-a with live
clients (sha256-checked streams and request/response), moves every connection to host-b mid-
traffic with the service address, and prints a report. Cleans up afterwards. Needs root.
  --overlay vxlan   the service address lives on a VXLAN overlay between the hosts (COAT-style)`,
};

function fail(message: string): never {
  // One line whatever the cause says (a failed `ip` command carries its multi-line stderr).
  process.stderr.write(`tcp-repair: ${message.trim().replace(/\s*\n\s*/g, ' ')}\n`);
  process.exit(1);
}

function printProbe(report: ProbeReport, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    return;
  }
  const rows = report.features.map((f) => [f.name, f.available ? 'yes' : `no (${f.code})`, f.available ? f.enables : f.fallback]);
  const width = [Math.max(...rows.map((r) => r[0]!.length)), Math.max(...rows.map((r) => r[1]!.length))];
  process.stdout.write(`kernel ${report.kernel}, node ${report.node}\n\n`);
  process.stdout.write(`${'feature'.padEnd(width[0]!)}  ${'available'.padEnd(width[1]!)}  enables / fallback\n`);
  for (const r of rows) process.stdout.write(`${r[0]!.padEnd(width[0]!)}  ${r[1]!.padEnd(width[1]!)}  ${r[2]}\n`);
}

async function main(argv: string[]): Promise<void> {
  const command = argv[0];
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP.main + '\n');
    return;
  }
  const rest = argv.slice(1);
  if (!(command in HELP) || command === 'main') fail(`unknown command '${command}' (try --help)`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(HELP[command] + '\n');
    return;
  }
  switch (command) {
    case 'probe': {
      const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean' } } });
      printProbe(await probe(), values.json === true);
      return;
    }
    case 'inspect': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { json: { type: 'boolean' }, pid: { type: 'string' }, fd: { type: 'string' }, repair: { type: 'boolean' } },
      });
      if (values.pid !== undefined || values.fd !== undefined) {
        const pid = Number(values.pid);
        const fd = Number(values.fd);
        if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(fd) || fd < 0) fail('inspect needs --pid P and --fd N, both integers');
        const state = inspectLive(pid, fd, { repair: values.repair === true });
        process.stdout.write((values.json ? JSON.stringify(state, null, 2) : describeLive(state)) + '\n');
        return;
      }
      const file = positionals[0];
      if (file === undefined) fail('inspect needs an image file, or --pid and --fd');
      const image = readImageFile(file);
      if (values.json) {
        const { recvQueue, sentUnacked, unsent, ...rest } = image;
        const lengths = { recvQueue: recvQueue.length, sentUnacked: sentUnacked.length, unsent: unsent.length };
        process.stdout.write(JSON.stringify({ ...rest, lengths }, null, 2) + '\n');
      } else {
        process.stdout.write(describeImage(image) + '\n');
      }
      return;
    }
    case 'demo': {
      const { runDemoCommand } = await import('./demo/command.js');
      await runDemoCommand(rest);
      return;
    }
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const e = error as Error & { code?: string };
  fail(`${e.message}${e.code && !e.message.includes(e.code) ? ` (${e.code})` : ''}`);
});
