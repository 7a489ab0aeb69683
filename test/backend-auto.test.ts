// `auto` never lands on the reference backend silently: when every faster backend fails to
// start, it says so once (a process warning in Node, console.warn in a browser), with each reason.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registerBackend, setBackend } from '../src/backends/index.js';

test("auto falling back to the reference backend warns once, naming why each faster one did not start", async () => {
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => void warnings.push(warning.message);
  process.on('warning', onWarning);
  try {
    registerBackend('native', () => {
      throw new Error('the addon is not built');
    });
    registerBackend('wasm', () => {
      throw new Error('no WebAssembly SIMD here');
    });
    assert.equal(setBackend('auto').name, 'ref');
    assert.equal(setBackend('auto').name, 'ref');
    await new Promise((resolve) => setImmediate(resolve)); // process warnings are emitted on the next tick
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0], /'auto' .*reference backend/);
    assert.match(warnings[0], /native: the addon is not built/);
    assert.match(warnings[0], /wasm: no WebAssembly SIMD here/);
  } finally {
    process.off('warning', onWarning);
  }
});
