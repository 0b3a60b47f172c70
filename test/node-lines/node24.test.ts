// Node 24: the addon loads and rebuilds, and the kernel-facing tests pass (see helpers/node-line.ts).
import t from 'tap';
import { testNodeLine } from '../helpers/node-line.js';

t.test('Node 24', (t) => testNodeLine(t, 24));
