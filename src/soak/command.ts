#!/usr/bin/env node
/** `npm run soak`: the long soak (10,000+ moves by default), printing its figures. */
import { parseArgs } from 'node:util';
import { formatSoak, runSoak } from './soak.js';

const { values } = parseArgs({
  options: {
    moves: { type: 'string', default: '3400' },
    loss: { type: 'string', default: '0,1,5' },
    connections: { type: 'string', default: '8' },
    json: { type: 'boolean' },
    help: { type: 'boolean' },
  },
});
if (values.help) {
  process.stdout.write(`Usage: npm run soak -- [--moves N] [--loss 0,1,5] [--connections N] [--json]

Moves N times per loss level (default 3400 x 3 levels = 10,200 moves) every connection between
host-a and host-b (network namespaces), back and forth, under each loss percentage in turn.
Needs root. Prints each level's move, freeze and recovery times, resets, and the bytes verified.
`);
  process.exit(0);
}
if (process.getuid?.() !== 0) {
  process.stderr.write('tcp-repair soak: builds network namespaces, run it as root\n');
  process.exit(1);
}
const loss = values.loss.split(',').map(Number);
const report = await runSoak({
  connections: Number(values.connections),
  moves: Number(values.moves),
  loss,
  onMove: (level, index) => {
    if ((index + 1) % 100 === 0) process.stderr.write(`loss ${loss[level]}%: ${index + 1} moves\n`);
  },
});
process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : formatSoak(report) + '\n');
if (!report.verification.ok || report.levels.some((l) => l.failed > 0)) process.exitCode = 1;
