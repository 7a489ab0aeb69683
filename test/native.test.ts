// The native backend (csrc/kernels.c in the Node addon) beyond its kernels (those are in
// kernels.test.ts, with every other fast backend): weight packing and its cache, output
// recycling, threads and ISA selection, and whole models in eval mode against the reference.
// Tolerance: 1e-5 * max|ref| per kernel output; whole models: 1e-4 * max|logit|, as the
// parity tests against torch. Skipped, with the reason shown, where the addon is not built.

import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './helpers/paths.js';
import assert from 'node:assert/strict';
import { Tensor, type Shape } from '../src/core/tensor.js';
import { Generator } from '../src/core/rng.js';
import { createReferenceBackend, withBackend, type Backend, type Conv2dParams } from '../src/backends/index.js';
import { FORCED_ISA, createNativeBackend, nativeAvailable } from '../src/backends/native/index.js';
import { getModel, type AnyResNet } from '../src/index.js';
import type { Module } from '../src/nn/module.js';
import { assertCloseToReference } from './helpers/compare.js';
import { checkPackingFollowsScaleAndGeometry } from './helpers/packing.js';
import { deterministicInput, filledModel } from './helpers/fill.js';
import { collectGarbageAfterEachTest } from './helpers/memory.js';

collectGarbageAfterEachTest();

const REL_TOL = 1e-5;
const MODEL_REL_TOL = 1e-4;

const skip = nativeAvailable() ? false : 'native addon not built (node scripts/install-native.js): build/Release/resnet_native.node missing';
const ref = createReferenceBackend();
const rng = new Generator(20240611);

function random(shape: Shape, low = -1, high = 1): Tensor {
  const t = Tensor.zeros(shape);
  const d = t.f32;
  for (let i = 0; i < d.length; i++) d[i] = rng.uniform(low, high);
  return t;
}

test('native backend: a weight changed in place is packed again', { skip }, () => {
  const backend = createNativeBackend();
  const x = random([1, 4, 5, 5]);
  const weight = random([6, 4, 3, 3]);
  const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
  backend.conv2d(x, weight, null, p, 5, 5);
  weight.fill_(0.5);
  assertCloseToReference(backend.conv2d(x, weight, null, p, 5, 5), ref.conv2d(x, weight, null, p, 5, 5), REL_TOL, 'repacked after fill_');
  weight.f32[17] = -3; // a write into data, announced
  weight.bumpVersion();
  assertCloseToReference(backend.conv2d(x, weight, null, p, 5, 5), ref.conv2d(x, weight, null, p, 5, 5), REL_TOL, 'repacked after bumpVersion');
});

test('native backend: a weight packed with a folded scale or another stride is never mistaken for itself', { skip }, () => {
  for (const threads of [1, 2]) checkPackingFollowsScaleAndGeometry(createNativeBackend({ threads }), ref, REL_TOL, `native ×${threads}`);
});

test('native backend: a released output is reused for the next output of its size, nothing else is', { skip }, () => {
  const backend = createNativeBackend();
  const x = random([2, 40, 30, 30]);
  const y = backend.relu(x);
  backend.release!(y);
  backend.release!(y); // twice: the second is ignored
  backend.release!(x); // not this backend's: ignored
  const again = backend.relu(x);
  assert.equal(again.data, y.data, 'the released array came back');
  assertCloseToReference(again, ref.relu(x), 0, 'and holds the new result');
  const other = backend.relu(x);
  assert.notEqual(other.data, again.data, 'released once, handed out once');
  assert.notEqual(other.data, x.data);
  // A model's planned forward pass releases its activations after their last use and stays right.
  const model = filled('resnet50');
  const input = deterministicInput([1, 3, 64, 64]);
  const expected = withBackend('ref', () => model.forward(input));
  for (let i = 0; i < 2; i++) {
    assertCloseToReference(withBackend('native', () => model.forward(input)), expected, MODEL_REL_TOL, `resnet50, pass ${i + 1}`);
  }
});

test('native backend: a planned forward pass releases its own activations, never a tensor a hook saw', { skip }, () => {
  const model = filled('resnet18');
  const input = deterministicInput([1, 3, 64, 64]);
  const expected = withBackend('ref', () => model.forward(input));
  // Hooks on a block, on a downsample (it sees its block's input) and on a whole stage: what
  // they are handed must keep its values through later passes, which reuse freed arrays.
  const seen: { what: string; t: Tensor; copy: Tensor }[] = [];
  const keep = (what: string) => (_m: unknown, inp: Tensor, out: Tensor) => {
    seen.push({ what: `${what} input`, t: inp, copy: inp.clone() }, { what: `${what} output`, t: out, copy: out.clone() });
  };
  const removers = [
    model.layer1.at(0).registerForwardHook(keep('layer1.0')),
    (model.layer2.at(0) as unknown as { downsample: Module }).downsample.registerForwardHook(keep('layer2.0.downsample')),
    model.layer3.registerForwardHook(keep('layer3')),
  ];
  assertCloseToReference(withBackend('native', () => model.forward(input)), expected, MODEL_REL_TOL, 'hooked pass');
  for (const r of removers) r();
  for (let i = 0; i < 3; i++) {
    const other = new Tensor(input.f32.map((v, j) => v * (i + 2) - ((j * 7) % 5) * 0.1), input.shape);
    const want = withBackend('ref', () => model.forward(other));
    assertCloseToReference(withBackend('native', () => model.forward(other)), want, MODEL_REL_TOL, `pass ${i + 2}`);
  }
  assert.equal(seen.length, 6);
  for (const { what, t, copy } of seen) assertCloseToReference(t, copy, 0, `${what}, kept by a hook`);
});

test('native backend: threads are settable and the ISA is named', { skip }, () => {
  const backend = createNativeBackend({ threads: 3 });
  assert.equal(backend.getThreads(), 3);
  backend.setThreads(1);
  assert.equal(backend.getThreads(), 1);
  assert.ok(backend.isas().includes(backend.isa()));
  assert.throws(() => createNativeBackend({ isa: 'sse9' }), /no 'sse9' kernels/);
  backend.setThreads(2);
});

function filled(name: string): AnyResNet {
  return filledModel(() => getModel(name)).eval();
}

function forward(model: AnyResNet, backend: string | Backend, x: Tensor): Tensor {
  return typeof backend === 'string' ? withBackend(backend, () => model.forward(x)) : model.forward(x);
}

for (const [name, input] of [['resnet18', [1, 3, 224, 224]], ['resnext50_32x4d', [1, 3, 160, 160]]] as const) {
  test(`native backend: ${name} eval logits ${JSON.stringify(input)} match the reference`, { skip }, () => {
    const model = filled(name);
    const x = deterministicInput(input);
    const expected = forward(model, 'ref', x);
    const actual = forward(model, 'native', x);
    assertCloseToReference(actual, expected, MODEL_REL_TOL, `${name} logits`);
  });
}

test('RESNET_NATIVE_ISA forces a build; one the CPU cannot run is a usage error, not a fallback', { skip }, () => {
  const bin = join(repoRoot, 'bin', 'resnet.js');
  const bench = (isa: string) =>
    spawnSync(process.execPath, [bin, 'bench', 'resnet18', '--input', '3x32x32', '--iterations', '1', '--warmup', '0', '--json'], {
      encoding: 'utf8',
      env: { ...process.env, RESNET_NATIVE_ISA: isa, RESNET_BACKEND: 'auto' },
    });
  const portable = bench('portable');
  assert.equal(portable.status, 0, portable.stderr);
  const result = JSON.parse(portable.stdout.trim());
  assert.equal(result.backend, 'native');
  assert.ok(['scalar', 'neon'].includes(result.isa), result.isa);
  for (const isa of createNativeBackend().isas()) {
    const name = Object.keys(FORCED_ISA).find((n) => FORCED_ISA[n].includes(isa))!;
    const r = bench(name);
    assert.equal(JSON.parse(r.stdout.trim()).isa, isa, `RESNET_NATIVE_ISA=${name}`);
  }
  const bad = bench('avx9');
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /^resnet: RESNET_NATIVE_ISA=avx9: this CPU cannot run those kernels/);
  assert.equal(bad.stderr.trim().split('\n').length, 1, 'one line');
});

test("the addon's CRC-32 (carry-less folding) is zlib's and the TypeScript sum's, at every length and offset; zip records are checked with it", { skip }, async () => {
  const { crc32: typescriptCrc32 } = await import('../src/core/crc32.js');
  const { platform } = await import('../src/platform/node.js');
  const zlib = await import('node:zlib');
  const addon = platform.loadNativeAddon() as { crc32?: (data: Uint8Array, crc: number) => number };
  const folded = addon.crc32;
  if (typeof folded !== 'function') {
    // Exported only where the CPU multiplies carry-less (x86-64 with PCLMULQDQ).
    assert.ok(process.arch !== 'x64', 'an x86-64 CPU without PCLMULQDQ');
    return;
  }
  const rng = new Generator(5);
  const bytes = new Uint8Array(70_000).map(() => Math.floor(rng.random() * 256));
  const lengths = [0, 1, 15, 16, 17, 63, 64, 65, 79, 80, 127, 128, 129, 1000, 4096, 4097, 65_536 + 33];
  for (let i = 0; i < 200; i++) lengths.push(Math.floor(rng.random() * 3000));
  for (const length of lengths) {
    for (const offset of [0, 1, 7, 13]) {
      const slice = bytes.subarray(offset, offset + length);
      const want = typescriptCrc32(slice);
      assert.equal(folded(slice, 0), want, `${length} bytes at offset ${offset}`);
      if (typeof (zlib as { crc32?: unknown }).crc32 === 'function') assert.equal((zlib as unknown as { crc32(d: Uint8Array): number }).crc32(slice), want);
    }
  }
  // Chained: the sum of a whole is the sum of its second part after its first.
  assert.equal(folded(bytes.subarray(5000), folded(bytes.subarray(0, 5000), 0)), typescriptCrc32(bytes));
  assert.equal(platform.crc32(bytes), typescriptCrc32(bytes), 'platform.crc32 (what the zip reader calls) agrees');
  assert.throws(() => folded(new Float32Array(4) as unknown as Uint8Array, 0), /must be a Uint8Array/);
});
