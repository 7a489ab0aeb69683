// The eval-mode inference plan (src/plan) and Tensor versions: what the plan fuses, that a
// planned forward equals the module-by-module pass, that it returns every activation to the
// backend after its last use and nothing a hook or the caller holds, that it follows the module
// tree (train/eval, hooks, loads, in-place writes), and that packed weights and folded
// BatchNorm follow their tensors' versions on every fast backend.
// Reference: the same model with every module hooked (nothing fused), on the reference
// backend; tolerance 1e-5 of the largest |value| (1e-4 of the largest logit across backends).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../src/core/tensor.js';
import { Generator } from '../src/core/rng.js';
import {
  createReferenceBackend, getBackend, listBackends, registerBackend, withBackend, type Backend,
} from '../src/backends/index.js';
import { createWasmBackend } from '../src/backends/wasm/index.js';
import { trace } from '../src/ops/trace.js';
import { ShapeError } from '../src/ops/functional.js';
import { Plan } from '../src/plan/index.js';
import { kaimingNormal_, uniform_ } from '../src/nn/init.js';
import { BatchNorm2d, Conv2d } from '../src/nn/layers.js';
import type { Module } from '../src/nn/module.js';
import { getModel, type AnyResNet } from '../src/index.js';
import { Bottleneck } from '../src/models/resnet.js';
import { assertCloseToReference, maxAbsDiff } from './helpers/compare.js';
import { deterministicInput, deterministicStateDict } from './helpers/fill.js';

const TOL = 1e-5;
const MODEL_TOL = 1e-4;

function filled(name: string): AnyResNet {
  const model = getModel(name);
  model.loadStateDict(deterministicStateDict([...model.stateDict()].map(([k, t]) => [k, t.shape] as const)));
  // Frozen, so that no pass needs an autograd graph: eval mode then runs the plan in any grad mode.
  return model.eval().requiresGrad_(false);
}

/** The pass module by module, nothing fused: every module hooked for the duration. */
function unfused(model: Module, x: Tensor, backend = 'ref'): Tensor {
  const removers = [...model.modules()].slice(1).map((m) => m.registerForwardHook(() => undefined));
  try {
    return withBackend(backend, () => model.call(x));
  } finally {
    for (const remove of removers) remove();
  }
}

/**
 * The reference backend, with outputs taken from a pool of released arrays and every released
 * array poisoned with NaN: a value read after the plan released it, or a tensor a hook holds
 * that the plan released, turns into NaN. Counts fresh arrays.
 */
function poolingBackend(): Backend & { fresh: number } {
  const ref = createReferenceBackend();
  const free = new Map<number, Float32Array[]>();
  const mine = new WeakSet<Float32Array>();
  const pooled = (t: Tensor): Tensor => {
    let data = free.get(t.size)?.pop();
    if (!data) {
      data = new Float32Array(t.size);
      backend.fresh++;
    }
    data.set(t.f32);
    mine.add(data);
    return new Tensor(data, t.shape);
  };
  const backend: Backend & { fresh: number } = {
    name: 'pooling',
    fresh: 0,
    setThreads: () => {},
    getThreads: () => 1,
    conv2d: (...args) => pooled(ref.conv2d(...args)),
    channelAffine: (...args) => pooled(ref.channelAffine(...args)),
    channelMoments: (x) => ref.channelMoments(x),
    relu: (x) => pooled(ref.relu(x)),
    add: (a, b) => pooled(ref.add(a, b)),
    maxPool2d: (...args) => pooled(ref.maxPool2d(...args)),
    adaptiveAvgPool2d: (...args) => pooled(ref.adaptiveAvgPool2d(...args)),
    linear: (...args) => pooled(ref.linear(...args)),
    release(t: Tensor): void {
      const data = t.f32;
      assert.ok(mine.has(data), 'released twice, or a tensor this backend did not make');
      mine.delete(data);
      data.fill(NaN);
      if (!free.has(data.length)) free.set(data.length, []);
      free.get(data.length)!.push(data);
    },
  };
  return backend;
}

const pooling = poolingBackend();
registerBackend('pooling', () => pooling);

test('ResNet-50 traced: every BatchNorm folded, every residual add and ReLU in a convolution epilogue', () => {
  const model = getModel('resnet50', { seed: 0 }).eval();
  const steps = new Plan(trace([1, 3, 64, 64], (x) => model.call(x))).describe();
  const count = (name: string): number => steps.filter((s) => s === name).length;
  assert.equal(count('conv2d+bn+relu'), 1 + 16 * 2, 'the stem and two per bottleneck');
  assert.equal(count('conv2d+bn+add+relu'), 16, 'the last of each bottleneck');
  assert.equal(count('conv2d+bn'), 4, 'the downsample shortcuts');
  assert.deepEqual(steps.filter((s) => !s.startsWith('conv2d')), ['maxPool2d', 'adaptiveAvgPool2d', 'flatten', 'linear']);
});

test('a planned forward equals the unfused pass, allocates nothing after the first, and releases only its own values', () => {
  for (const name of ['resnet18', 'resnet50']) {
    const model = filled(name);
    const x = deterministicInput([2, 3, 40, 48]);
    const expected = unfused(model, x);
    const first = withBackend('pooling', () => model.forward(x));
    assertCloseToReference(first, expected, TOL, `${name} first pass`);
    pooling.fresh = 0;
    const second = withBackend('pooling', () => model.forward(x));
    assertCloseToReference(second, expected, TOL, `${name} second pass`);
    assert.equal(pooling.fresh, 1, `${name}: the second pass takes every activation from released ones, all but the logits`);
    assertCloseToReference(first, expected, TOL, `${name}: the first pass's logits are still the caller's`);
  }
});

test('hooks see what the unfused pass computes, and keep it through later passes', () => {
  const model = filled('resnet50');
  const x = deterministicInput([1, 3, 48, 48]);
  const block = model.layer2.at(0) as Bottleneck;
  const seen = new Map<string, { input: Tensor; output: Tensor; copy: Tensor }[]>();
  const watch = (name: string, m: Module): (() => void) =>
    m.registerForwardHook((_m, input, output) => {
      if (!seen.has(name)) seen.set(name, []);
      seen.get(name)!.push({ input, output, copy: output.clone() });
    });
  const removers = [watch('bn2', block.bn2), watch('relu', block.relu), watch('downsample', block.downsample!), watch('layer3', model.layer3)];
  const logits = withBackend('pooling', () => model.forward(x));
  for (let i = 0; i < 2; i++) withBackend('pooling', () => model.forward(deterministicInput([1, 3, 48, 48]).fill_(i)));
  for (const remove of removers) remove();
  assert.deepEqual(
    ['bn2', 'relu', 'downsample', 'layer3'].map((name) => seen.get(name)!.length), [3, 9, 3, 3],
    'three passes: bn2, the shared ReLU (three calls a pass), downsample, layer3',
  );
  // Everything a hook was handed keeps its values (the pooling backend poisons what is released).
  for (const [name, calls] of seen) calls.forEach((c, i) => assert.equal(maxAbsDiff(c.output, c.copy), 0, `${name} call ${i} kept`));

  // The first pass against the same hooks on the unfused pass.
  const want = new Map<string, Tensor[]>();
  const modules: Record<string, Module> = { bn2: block.bn2, relu: block.relu, downsample: block.downsample!, layer3: model.layer3 };
  const removers2 = Object.entries(modules).map(([name, m]) =>
    m.registerForwardHook((_m, _input, output) => void (want.get(name) ?? want.set(name, []).get(name)!).push(output.clone())),
  );
  assertCloseToReference(logits, unfused(model, x), MODEL_TOL, 'logits with hooks');
  for (const remove of removers2) remove();
  for (const [name, outputs] of want) {
    outputs.forEach((output, i) => assertCloseToReference(seen.get(name)![i].output, output, TOL, `${name} call ${i}`));
  }
});

test('the plan follows the module tree: train mode runs the modules, eval() a plan of the new statistics', () => {
  const model = filled('resnet18');
  const x = deterministicInput([2, 3, 32, 32]);
  const before = model.forward(x);
  const bn = model.bn1 as BatchNorm2d;
  const mean = bn.runningMean!.clone();
  model.train();
  model.forward(x); // train mode: BatchNorm updates its running statistics, as torch does
  assert.ok(maxAbsDiff(bn.runningMean!, mean) > 0, 'running statistics updated: the modules ran');
  model.eval();
  const after = model.forward(x);
  assert.ok(maxAbsDiff(after, before) > 1e-3, 'new statistics used');
  assertCloseToReference(after, unfused(model, x), TOL, 'and folded right');
  // One module in train mode is enough for the whole model to run module by module.
  bn.train();
  assertCloseToReference(model.forward(x), unfused(model, x), TOL, 'bn1 in train mode');
});

test('loadStateDict and in-place writes reach the plan: weights and BatchNorm buffers, on every backend', () => {
  const backends = ['ref', ...listBackends().filter((b) => b === 'native' || b === 'wasm')];
  const model = filled('resnet18');
  const x = deterministicInput([1, 3, 32, 32]);
  for (const backend of backends) withBackend(backend, () => model.forward(x)); // packed and folded
  // Each write must change the output (so a stale packing or fold would show) and every backend
  // must then agree with the unfused reference pass.
  const changes = (what: string, write: () => void): void => {
    const before = model.forward(x).clone();
    write();
    const want = unfused(model, x);
    assert.ok(maxAbsDiff(want, before) > 1e-3, `${what}: the output changes`);
    for (const backend of backends) {
      assertCloseToReference(withBackend(backend, () => model.forward(x)), want, MODEL_TOL, `${what} (${backend})`);
    }
  };
  const conv = (model.layer2.at(1) as unknown as { conv2: Conv2d }).conv2;
  // One element of one weight, written through copy_ (a partial update that sampled checks miss).
  changes('one weight element changed by copy_', () => {
    const weight = conv.weight.clone();
    weight.f32[5000] += 5;
    conv.weight.copy_(weight);
  });
  changes('one weight element written into data, then bumpVersion', () => {
    conv.weight.f32[1000] += 5;
    conv.weight.bumpVersion();
  });
  // BatchNorm buffers (folded into the convolution before them), then the whole state dict.
  const bn = (model.layer2.at(1) as unknown as { bn1: BatchNorm2d }).bn1;
  changes('running variances changed by copy_', () => bn.runningVar!.copy_(Tensor.full([bn.numFeatures], 0.01)));
  changes('one BatchNorm bias element by copy_', () => {
    const bias = bn.bias!.clone();
    bias.f32[7] += 3;
    bn.bias!.copy_(bias);
  });
  changes('loadStateDict', () => model.loadStateDict(getModel('resnet18', { seed: 9 }).stateDict()));
});

test('bad input: a typed error from the trace, nothing cached, the next call right', () => {
  const model = filled('resnet18');
  assert.throws(() => model.forward(Tensor.zeros([1, 4, 32, 32])), ShapeError);
  assert.throws(() => model.forward(Tensor.zeros([3, 32, 32])), ShapeError);
  const x = deterministicInput([1, 3, 32, 32]);
  assertCloseToReference(model.forward(x), unfused(model, x), TOL, 'after the errors');
});

test('a hook that runs its module again inside the same pass is refused by name', () => {
  const model = filled('resnet18');
  const x = deterministicInput([1, 3, 32, 32]);
  const remove = model.layer1.registerForwardHook(() => void model.forward(x));
  assert.throws(() => model.forward(x), /ran the module again during its own forward pass/);
  remove();
  assertCloseToReference(model.forward(x), unfused(model, x), TOL, 'and the plan runs again afterwards');
});

test('Tensor.version moves on every in-place write of the library, and only then', () => {
  const t = Tensor.zeros([2, 3]);
  const seen = new Set([t.version]);
  const moved = (what: string): void => {
    assert.ok(!seen.has(t.version), what);
    seen.add(t.version);
  };
  const v0 = t.version;
  t.reshape([3, 2]); // a view: reading is no write
  t.clone();
  assert.equal(t.version, v0, 'reads leave it');
  t.fill_(1);
  moved('fill_');
  t.copy_(Tensor.full([2, 3], 2));
  moved('copy_');
  uniform_(t, 0, 1, new Generator(1));
  moved('uniform_');
  const w = Tensor.zeros([4, 2, 1, 1]);
  const v = w.version;
  kaimingNormal_(w, { generator: new Generator(1) });
  assert.notEqual(w.version, v, 'kaimingNormal_');
  t.reshape([6]).fill_(3);
  moved('a write through a reshaped view');
  t.set_(Tensor.full([2, 3], 4));
  moved('set_');
  t.f32[0] = 5;
  assert.ok(seen.has(t.version), 'a write into data is not seen…');
  t.bumpVersion();
  moved('…until bumpVersion');
  const bn = new BatchNorm2d(3);
  const versions = [bn.runningMean!.version, bn.runningVar!.version, bn.numBatchesTracked!.version];
  bn.forward(deterministicInput([2, 3, 4, 4]));
  assert.ok([bn.runningMean!, bn.runningVar!, bn.numBatchesTracked!].every((b, i) => b.version !== versions[i]), 'train-mode BatchNorm');
});

const wasm = createWasmBackend({ threads: 2 });
after(() => wasm.dispose());

test('packed weights key on the version: a partial update packs again (wasm, and native where built)', () => {
  const ref = createReferenceBackend();
  const rng = new Generator(3);
  const x = uniform_(Tensor.zeros([1, 8, 9, 9]), -1, 1, rng);
  const p = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 } as const;
  const fast: [string, Backend][] = [['wasm', wasm]];
  if (listBackends().includes('native')) fast.push(['native', withBackend('native', getBackend)]);
  for (const [name, backend] of fast) {
    const weight = uniform_(Tensor.zeros([8, 8, 3, 3]), -1, 1, rng);
    const scale = Float64Array.from({ length: 8 }, (_, i) => 1 + i / 8);
    backend.conv2d(x, weight, null, p, 9, 9, { scale });
    const changed = weight.clone();
    changed.f32[100] += 3; // not one of 16 evenly spaced samples of the 576 elements
    weight.copy_(changed);
    const want = ref.conv2d(x, weight, null, p, 9, 9, { scale });
    assertCloseToReference(backend.conv2d(x, weight, null, p, 9, 9, { scale }), want, TOL, `${name}: copy_ of one element`);
  }
});
