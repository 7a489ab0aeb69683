// Autograd at the op level: each op's gradients against torch's (test/fixtures/train/make_train.py,
// ops.safetensors) on every backend, against float32 central differences on the reference, and
// the engine's rules (accumulation, retainGraph, saved-tensor versions, grad mode, freezing).
// Tolerances: torch parity max|ours - torch| <= 1e-5 * max(1, max|torch|) per tensor (float32
// against float32: summation order alone parts them by ~1e-6). Finite differences: see below.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tensor } from '../src/core/tensor.js';
import { listBackends, withBackend } from '../src/backends/index.js';
import * as F from '../src/ops/functional.js';
import { enableGrad, isGradEnabled, noGrad } from '../src/ops/autograd.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { BatchNorm2d, Conv2d, Linear, Sequential, ReLU } from '../src/nn/layers.js';
import { Generator } from '../src/core/rng.js';
import { fixturePath } from './helpers/paths.js';
import {
  add64, adaptiveAvgPool64, batchNorm64, conv2d64, crossEntropy64, linear64, logSoftmax64, maxPool64, relu64, subsamplePadChannels64,
  type Array64,
} from './helpers/float64-ops.js';

const BACKENDS = listBackends().filter(
  (b) => b !== 'meta' && (!process.env.RESNET_TEST_BACKENDS || process.env.RESNET_TEST_BACKENDS.split(',').includes(b)),
);
const fixture = readSafetensors(readFileSync(fixturePath('train', 'ops.safetensors')));
const cases = (JSON.parse(readFileSync(fixturePath('train', 'ops.json'), 'utf8')) as { cases: Record<string, Record<string, unknown>> }).cases;
const TORCH_TOL = 1e-5;

function get(key: string): Tensor {
  const t = fixture.get(key);
  assert.ok(t, `fixture ${key} missing`);
  return t.clone();
}

function assertClose(actual: Tensor | null, expected: Tensor, tol: number, what: string): void {
  assert.ok(actual, `${what}: no gradient`);
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  let worst = 0;
  let scale = 1;
  for (let i = 0; i < expected.size; i++) {
    scale = Math.max(scale, Math.abs(Number(expected.data[i])));
    worst = Math.max(worst, Math.abs(Number(actual.data[i]) - Number(expected.data[i])));
  }
  assert.ok(worst <= tol * scale, `${what}: max |ours - torch| ${worst.toExponential(3)} > ${tol} * ${scale.toExponential(3)}`);
}

type Inputs = Record<string, Tensor>;

/** Each fixture case as our op: the function of its inputs (leaves), and which inputs are constants. */
const OPS: Record<string, (t: Inputs) => Tensor> = {
  conv2d: (t) => F.conv2d(t.x, t.weight, t.bias, { stride: [2, 1], padding: [1, 2], dilation: [2, 1], groups: 2 }),
  conv2d_nobias: (t) => F.conv2d(t.x, t.weight, null, { stride: [2, 2], padding: [0, 0], dilation: [1, 1], groups: 1 }),
  batch_norm_train: (t) => F.batchNorm2d(t.x, { runningMean: t.running_mean, runningVar: t.running_var, weight: t.weight, bias: t.bias, training: true, momentum: 0.1, eps: 1e-5 }),
  batch_norm_eval: (t) => F.batchNorm2d(t.x, { runningMean: t.running_mean, runningVar: t.running_var, weight: t.weight, bias: t.bias, training: false, momentum: 0.1, eps: 1e-5 }),
  relu: (t) => F.relu(t.x),
  max_pool2d: (t) => F.maxPool2d(t.x, { kernel: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1] }),
  adaptive_avg_pool2d: (t) => F.adaptiveAvgPool2d(t.x, [3, 2]),
  linear: (t) => F.linear(t.x, t.weight, t.bias),
  add_shared: (t) => F.add(F.relu(t.a), t.a),
  flatten: (t) => F.flatten(t.x, 1),
  log_softmax: (t) => F.logSoftmax(t.x, 1),
};
const CONSTANTS = new Set(['running_mean', 'running_var']);

test('the fixture covers exactly the ops this test runs', () => {
  const lossCases = Object.keys(cases).filter((name) => 'loss' in cases[name]);
  assert.deepEqual(Object.keys(cases).filter((n) => !lossCases.includes(n)).sort(), Object.keys(OPS).sort());
});

for (const backend of BACKENDS) {
  test(`each op's output and gradients match torch's (${backend})`, () => {
    withBackend(backend, () => {
      for (const [name, op] of Object.entries(OPS)) {
        const inputs: Inputs = {};
        for (const key of cases[name].inputs as string[]) {
          inputs[key] = get(`${name}/${key}`);
          if (!CONSTANTS.has(key)) inputs[key].requiresGrad_(true);
        }
        const y = op(inputs);
        assertClose(y, get(`${name}/y`), TORCH_TOL, `${name} output`);
        y.backward(get(`${name}/dy`));
        for (const [key, t] of Object.entries(inputs)) {
          if (CONSTANTS.has(key)) assertClose(t, get(`${name}/${key}_after`), TORCH_TOL, `${name} ${key} after`);
          else assertClose(t.grad, get(`${name}/d${key}`), TORCH_TOL, `${name} d${key}`);
        }
      }
    });
  });

  test(`cross entropy with label smoothing, class weights, an ignored index and each reduction matches torch (${backend})`, () => {
    withBackend(backend, () => {
      let weighted = 0, ignoring = 0;
      for (const [name, c] of Object.entries(cases)) {
        if (!('loss' in c)) continue;
        const options = c.loss as { reduction: F.Reduction; label_smoothing: number; weight?: number[]; ignore_index?: number };
        const logits = get(`${name}/logits`).requiresGrad_(true);
        const weight = options.weight ? new Tensor(Float32Array.from(options.weight), [options.weight.length]) : undefined;
        weighted += weight ? 1 : 0;
        ignoring += options.ignore_index !== undefined || (get(`${name}/target`).data as BigInt64Array).includes(-100n) ? 1 : 0;
        const loss = F.crossEntropy(logits, get(`${name}/target`), {
          reduction: options.reduction, labelSmoothing: options.label_smoothing, weight, ignoreIndex: options.ignore_index,
        });
        assertClose(loss, get(`${name}/y`), TORCH_TOL, `${name} loss`);
        loss.backward(get(`${name}/dy`));
        assertClose(logits.grad, get(`${name}/dlogits`), TORCH_TOL, `${name} dlogits`);
      }
      assert.ok(weighted >= 3 && ignoring >= 4, `the fixture's weighted (${weighted}) and ignoring (${ignoring}) cases ran`);
    });
  });
}

// --- finite differences in float64 -------------------------------------------------------------
// Each op's backward on the reference backend (float32) against central differences of a float64
// twin of its forward (test/helpers/float64-ops.ts), for the loss Σ y·w with w fixed: with step
// h = 1e-5 on inputs of magnitude ~1, truncation error is O(h²) ≈ 1e-10 and rounding ≈ 1e-16 / h
// = 1e-11, so the differences are the exact derivative to ~1e-10, and what is left is the float32
// backward's own rounding (measured: within 1e-7 of the largest gradient, every op). The
// tolerance, 1e-5 of the largest gradient, is 100× above that and 10^4× below a wrong formula (a
// missing term of batch norm's backward moves its dx by > 10% of it). The twin's forward is first checked against the
// reference's float32 one. Smooth inputs only: relu and max pooling are tested at points at least
// 0.05 ≫ h away from their kinks and ties.

function seeded(shape: number[], seed: number, scale = 1): Tensor {
  const g = new Generator(seed);
  const t = Tensor.zeros(shape);
  const d = t.f32;
  for (let i = 0; i < d.length; i++) d[i] = (g.random() * 2 - 1) * scale;
  return t;
}

/** Inputs whose values are at least `gap` apart from each other and from 0: no kinks or ties within reach of ±h. */
function separated(shape: number[], seed: number, gap: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const g = new Generator(seed);
  const order = Array.from({ length: n }, (_, i) => i).sort(() => g.random() - 0.5);
  const t = Tensor.zeros(shape);
  order.forEach((slot, rank) => {
    const k = rank - Math.floor(n / 2);
    t.f32[slot] = (k >= 0 ? k + 1 : k) * gap;
  });
  return t;
}

type Inputs64 = Record<string, Array64>;
const to64 = (t: Tensor): Array64 => ({ data: Float64Array.from(t.f32), shape: [...t.shape] });

function checkFiniteDifferences(name: string, inputs: Inputs, op: (t: Inputs) => Tensor, twin: (t: Inputs64) => Array64, h = 1e-5, tol = 1e-5): void {
  const leaves: Inputs = {};
  for (const [k, v] of Object.entries(inputs)) leaves[k] = CONSTANTS.has(k) ? v.clone() : v.clone().requiresGrad_(true);
  const y = op(leaves);
  const exact: Inputs64 = {};
  for (const [k, v] of Object.entries(inputs)) exact[k] = to64(v);
  // The twin computes the op: its float64 values round to the reference's float32 ones.
  const y64 = twin(exact);
  assert.deepEqual(y64.shape, [...y.shape], `${name}: the float64 twin's shape`);
  let yScale = 1;
  for (const v of y.f32) yScale = Math.max(yScale, Math.abs(v));
  y64.data.forEach((v, i) => assert.ok(Math.abs(v - y.f32[i]) <= 1e-5 * yScale, `${name}: float64 twin ${v} vs reference ${y.f32[i]} at ${i}`));
  const w = seeded([...y.shape], 99);
  y.backward(w);
  const loss = (probe: Inputs64): number => {
    const out = twin(probe).data;
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i] * w.f32[i];
    return s;
  };
  for (const [key, t] of Object.entries(inputs)) {
    if (CONSTANTS.has(key)) continue;
    const analytic = leaves[key].grad!.f32;
    let scale = 0;
    for (const v of analytic) scale = Math.max(scale, Math.abs(v));
    const step = Math.max(1, Math.floor(t.size / 24));
    for (let i = 0; i < t.size; i += step) {
      const at = (delta: number): number => {
        const probe: Inputs64 = {};
        for (const [k, v] of Object.entries(exact)) probe[k] = { data: v.data.slice(), shape: v.shape };
        probe[key].data[i] += delta;
        return loss(probe);
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      assert.ok(
        Math.abs(numeric - analytic[i]) <= tol * Math.max(scale, 1e-3),
        `${name} d${key}[${i}]: float64 finite difference ${numeric}, backward ${analytic[i]} (scale ${scale})`,
      );
    }
  }
}

test('every op\'s backward agrees with float64 central finite differences (reference backend)', () => {
  withBackend('ref', () => {
    const conv = { stride: [2, 1], padding: [1, 2], dilation: [2, 1], groups: 2 } as const;
    checkFiniteDifferences('conv2d', { x: seeded([2, 4, 7, 6], 1), weight: seeded([6, 2, 3, 3], 2), bias: seeded([6], 3) },
      (t) => F.conv2d(t.x, t.weight, t.bias, conv),
      (t) => conv2d64(t.x, t.weight, t.bias, conv.stride, conv.padding, conv.dilation, conv.groups));
    const bn = (training: boolean) => (t: Inputs) =>
      F.batchNorm2d(t.x, { runningMean: t.running_mean, runningVar: t.running_var, weight: t.weight, bias: t.bias, training, momentum: 0.1, eps: 1e-5 });
    const bn64 = (training: boolean) => (t: Inputs64) => batchNorm64(t.x, t.weight, t.bias, t.running_mean, t.running_var, training, 1e-5);
    const bnInputs = () => ({
      x: seeded([3, 4, 5, 5], 4), weight: seeded([4], 5), bias: seeded([4], 6),
      running_mean: seeded([4], 7, 0.1), running_var: Tensor.full([4], 0.8),
    });
    checkFiniteDifferences('batch_norm train', bnInputs(), bn(true), bn64(true));
    checkFiniteDifferences('batch_norm eval', bnInputs(), bn(false), bn64(false));
    checkFiniteDifferences('relu', { x: separated([2, 3, 4, 4], 8, 0.05) }, (t) => F.relu(t.x), (t) => relu64(t.x));
    const pool = { kernel: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1] } as const;
    checkFiniteDifferences('max_pool2d', { x: separated([2, 3, 9, 8], 9, 0.05) },
      (t) => F.maxPool2d(t.x, pool), (t) => maxPool64(t.x, pool.kernel, pool.stride, pool.padding, pool.dilation));
    checkFiniteDifferences('adaptive_avg_pool2d', { x: seeded([2, 3, 7, 5], 10) },
      (t) => F.adaptiveAvgPool2d(t.x, [3, 2]), (t) => adaptiveAvgPool64(t.x, 3, 2));
    checkFiniteDifferences('linear', { x: seeded([4, 6], 11), weight: seeded([5, 6], 12), bias: seeded([5], 13) },
      (t) => F.linear(t.x, t.weight, t.bias), (t) => linear64(t.x, t.weight, t.bias));
    checkFiniteDifferences('add', { a: seeded([2, 3, 4], 14), b: seeded([2, 3, 4], 15) }, (t) => F.add(t.a, t.b), (t) => add64(t.a, t.b));
    checkFiniteDifferences('flatten', { x: seeded([2, 3, 2, 2], 16) }, (t) => F.flatten(t.x, 1), (t) => ({ data: t.x.data, shape: [2, 12] }));
    checkFiniteDifferences('log_softmax', { x: seeded([4, 7], 17, 3) }, (t) => F.logSoftmax(t.x, 1), (t) => logSoftmax64(t.x));
    const target = [0, 4, 2, 2, 1, 3];
    checkFiniteDifferences('cross_entropy', { x: seeded([6, 5], 18, 2) },
      (t) => F.crossEntropy(t.x, Tensor.int64(target), { labelSmoothing: 0.1, reduction: 'none' }), (t) => crossEntropy64(t.x, target, 0.1));
    checkFiniteDifferences('subsample_pad_channels', { x: seeded([2, 3, 5, 6], 19) },
      (t) => F.subsamplePadChannels(t.x, 2, 1, 2), (t) => subsamplePadChannels64(t.x, 2, 1, 2));
  });
});

// --- the engine ---------------------------------------------------------------------------------

test('gradients accumulate over backward passes until zeroed', () => {
  const x = Tensor.from([1, -2, 3, 4], [2, 2]).requiresGrad_(true);
  F.sum(F.relu(x)).backward();
  assert.deepEqual([...x.grad!.f32], [1, 0, 1, 1]);
  F.sum(F.relu(x)).backward();
  assert.deepEqual([...x.grad!.f32], [2, 0, 2, 2]);
  const layer = new Linear(2, 2);
  layer.call(x).backward(Tensor.full([2, 2], 1));
  layer.zeroGrad({ setToNone: false });
  assert.deepEqual([...layer.weight.grad!.f32], [0, 0, 0, 0]);
  layer.zeroGrad();
  assert.equal(layer.weight.grad, null);
});

test('a tensor used twice gets the sum of both paths, and the graph is freed unless retained', () => {
  const a = Tensor.from([1, 2, 3], [3]).requiresGrad_(true);
  const y = F.sum(F.add(a, a));
  y.backward(undefined, { retainGraph: true });
  assert.deepEqual([...a.grad!.f32], [2, 2, 2]);
  y.backward();
  assert.deepEqual([...a.grad!.f32], [4, 4, 4]);
  assert.throws(() => y.backward(), /backward through the graph a second time/);
});

test('a saved tensor written in place after the forward fails backward, naming the op', () => {
  const x = Tensor.from([1, -1, 2, -2], [4]).requiresGrad_(true);
  const y = F.relu(x);
  const loss = F.sum(y);
  y.fill_(0);
  assert.throws(() => loss.backward(), /modified by an inplace operation.*ReluBackward0/);
  // The weight of a linear layer changed by an optimizer before backward, likewise.
  const layer = new Linear(4, 2);
  const out = F.sum(layer.call(x.detach().reshape([1, 4])));
  layer.weight.f32[0] += 1;
  layer.weight.bumpVersion();
  assert.throws(() => out.backward(), /AddmmBackward0/);
});

test('noGrad records nothing, enableGrad records inside it; backward needs a scalar or a gradient', () => {
  const x = Tensor.from([1, 2], [1, 2]).requiresGrad_(true);
  assert.equal(isGradEnabled(), true);
  const y = noGrad(() => {
    assert.equal(isGradEnabled(), false);
    const inner = enableGrad(() => F.relu(x));
    assert.equal(inner.gradFn?.name, 'ReluBackward0');
    return F.relu(x);
  });
  assert.equal(y.gradFn, null);
  assert.equal(y.requiresGrad, false);
  assert.equal(isGradEnabled(), true);
  assert.throws(() => y.backward(), /does not require grad/);
  assert.throws(() => F.relu(x).backward(), /only for scalar outputs/);
  assert.throws(() => F.relu(x).requiresGrad_(false), /leaf/);
  assert.throws(() => Tensor.int64([1]).requiresGrad_(true), /float32/);
  const d = F.relu(x).detach();
  assert.equal(d.requiresGrad, false);
  assert.equal(d.gradFn, null);
});

test('a frozen module gets no gradients; its input still does, through eval-mode batch norm', () => {
  const model = new Sequential(new Conv2d(2, 3, 3, { padding: 1 }), new BatchNorm2d(3), new ReLU());
  model.eval().requiresGrad_(false);
  const x = seeded([2, 2, 5, 5], 3);
  // Nothing needs a graph: the eval plan runs and records nothing.
  assert.equal(model.call(x).gradFn, null);
  const leaf = x.clone().requiresGrad_(true);
  F.sum(model.call(leaf)).backward();
  assert.ok(leaf.grad && leaf.grad.f32.some((v) => v !== 0));
  for (const p of model.parameters()) assert.equal(p.grad, null);
  // Unfrozen in eval mode: the modules run (not the plan) and the parameters get gradients.
  model.requiresGrad_(true);
  const y = model.call(x);
  assert.equal(y.gradFn?.name, 'ReluBackward0');
  F.sum(y).backward();
  for (const p of model.parameters()) assert.ok(p.grad, 'parameter without a gradient');
  // The inference path under noGrad is the plan again.
  assert.equal(noGrad(() => model.call(x)).gradFn, null);
});

test('a fused convolution epilogue is refused when gradients are needed', () => {
  const x = seeded([1, 2, 4, 4], 5).requiresGrad_(true);
  const w = seeded([2, 2, 1, 1], 6);
  const params = { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 } as const;
  assert.throws(() => F.conv2d(x, w, null, params, { relu: true }), /epilogue/);
  assert.equal(noGrad(() => F.conv2d(x, w, null, params, { relu: true })).gradFn, null);
});

test('cross entropy rejects bad targets and weights, and ignoring every sample gives NaN as torch does', () => {
  const logits = new Tensor(Float32Array.from([1, 2, 3, 0, -1, 4]), [2, 3]);
  const target = (values: number[]) => new Tensor(BigInt64Array.from(values.map(BigInt)), [values.length]);
  assert.throws(() => F.crossEntropy(logits, target([0, 3])), /target 3 is out of bounds for 3 classes/);
  assert.throws(() => F.crossEntropy(logits, target([0, -1])), /target -1 is out of bounds/);
  assert.throws(() => F.crossEntropy(logits, new Tensor(Float32Array.from([0, 1]), [2])), /int64 target/);
  assert.throws(() => F.crossEntropy(logits, target([0, 1]), { weight: new Tensor(Float32Array.from([1, 2]), [2]) }), /weight of shape \[3\]/);
  assert.throws(() => F.crossEntropy(logits, target([0, 1]), { ignoreIndex: 0.5 }), /ignoreIndex must be an integer/);
  // The ignored index may lie outside [0, C); an ignored sample adds nothing, to the loss or its gradient.
  const x = logits.clone().requiresGrad_(true);
  const loss = F.crossEntropy(x, target([-7, 2]), { ignoreIndex: -7, labelSmoothing: 0.1 });
  const alone = F.crossEntropy(new Tensor(logits.f32.slice(3), [1, 3]), target([2]), { labelSmoothing: 0.1 });
  assert.ok(Math.abs(loss.item() - alone.item()) < 1e-6, `${loss.item()} vs ${alone.item()}`);
  loss.backward();
  assert.deepEqual([...x.grad!.f32.slice(0, 3)], [0, 0, 0]);
  assert.ok(Number.isNaN(F.crossEntropy(logits, target([-100, -100])).item()));
  assert.equal(F.crossEntropy(logits, target([-100, -100]), { reduction: 'sum' }).item(), 0);
});
