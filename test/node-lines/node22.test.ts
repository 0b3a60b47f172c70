// Node 22: the addon loads and rebuilds, and the kernel-facing tests pass (see helpers/node-line.ts).
import t from 'tap';
import { testNodeLine } from '../helpers/node-line.js';

t.test('Node 22', (t) => testNodeLine(t, 22));
