// Loads the compiled addon. This file is CommonJS in both builds so that `__dirname` can
// point `bindings` at the package root (dist/esm or dist/cjs are two levels below it).
import path = require('node:path');
import bindings = require('bindings');
import type { NativeBinding } from './native-types.js';

const moduleRoot = path.join(__dirname, '..', '..');

function load(): NativeBinding {
  try {
    return bindings({ bindings: 'tcp_repair', module_root: moduleRoot }) as NativeBinding;
  } catch (cause) {
    const error = new Error(
      'tcp-repair: the native addon is not built (run `npm rebuild tcp-repair`; it needs Linux, ' +
        `python3, make and a C++ compiler): ${(cause as Error).message}`,
    );
    (error as Error & { code: string }).code = 'ERR_TCP_REPAIR_NO_ADDON';
    throw error;
  }
}

export const native: NativeBinding = load();

/** The package root (where build/ lives), for programs built with the addon. */
export const packageRoot: string = moduleRoot;
