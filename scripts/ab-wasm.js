#!/usr/bin/env node
// Compares two builds of the WebAssembly kernels (after `npm run build`): both run in this one
// process as two wasm backends, and each model's eval forward alternates between them run by
// run, so that a machine whose speed drifts (a shared or virtual one) slows both alike. Prints
// each build's median and min, the median of the per-pair ratios B/A (below 1: B is faster), and
// how far B's logits are from A's. Build the variants with `scripts/build-wasm.sh <dir>`. Usage:
//   node scripts/ab-wasm.js <a/kernels.wasm> <b/kernels.wasm> [--models resnet18,resnet50]
//                           [--threads 1] [--batch 1] [--runs 12] [--variant relaxed|simd]

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Tensor, getModel } from '../dist/src/index.js';
import { registerBackend, withBackend } from '../dist/src/backends/index.js';
import { createWasmBackend } from '../dist/src/backends/wasm/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    models: { type: 'string', default: 'resnet18,resnet50' },
    threads: { type: 'string', default: '1' },
    batch: { type: 'string', default: '1' },
    runs: { type: 'string', default: '12' },
    variant: { type: 'string', default: 'relaxed' },
  },
});
if (positionals.length !== 2) {
  console.error('usage: node scripts/ab-wasm.js <a.wasm> <b.wasm> [--models …] [--threads N] [--batch N] [--runs N] [--variant relaxed|simd]');
  process.exit(2);
}
const variant = values.variant;
const threads = Number(values.threads);
// wasmBytes is keyed by variant: bytes for the other variant would be ignored.
const backendOf = (file) => createWasmBackend({ threads, variant, wasmBytes: { [variant]: new Uint8Array(readFileSync(file)) } });
const [a, b] = positionals.map(backendOf);
registerBackend('ab-wasm-a', () => a);
registerBackend('ab-wasm-b', () => b);

const median = (v) => v.slice().sort((p, q) => p - q)[v.length >> 1];
for (const name of values.models.split(',').filter(Boolean)) {
  const model = getModel(name).eval();
  model.requiresGrad_(false); // inference: the eval plan, not a recorded graph
  const x = Tensor.zeros([Number(values.batch), 3, 224, 224]);
  for (let i = 0; i < x.f32.length; i++) x.f32[i] = Math.sin(i);
  let ya, yb;
  for (let i = 0; i < 2; i++) {
    ya = withBackend('ab-wasm-a', () => model.forward(x)).f32.slice();
    yb = withBackend('ab-wasm-b', () => model.forward(x)).f32.slice();
  }
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ya.length; i++) {
    diff = Math.max(diff, Math.abs(ya[i] - yb[i]));
    scale = Math.max(scale, Math.abs(ya[i]));
  }
  const ta = [];
  const tb = [];
  for (let i = 0; i < Number(values.runs); i++) {
    let t0 = performance.now();
    withBackend('ab-wasm-a', () => model.forward(x));
    ta.push(performance.now() - t0);
    t0 = performance.now();
    withBackend('ab-wasm-b', () => model.forward(x));
    tb.push(performance.now() - t0);
  }
  const ratio = median(tb.map((t, i) => t / ta[i]));
  console.log(`${name} batch ${values.batch}, ${threads} thread(s): A ${median(ta).toFixed(1)} ms (min ${Math.min(...ta).toFixed(1)}), ` +
    `B ${median(tb).toFixed(1)} ms (min ${Math.min(...tb).toFixed(1)}); B/A per pair, median ${ratio.toFixed(3)}; ` +
    `logits max|B − A| / max|A| ${(diff / scale).toExponential(1)}`);
}
a.dispose();
b.dispose();
