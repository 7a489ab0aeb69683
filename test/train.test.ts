// Training against torch 1.13 (test/fixtures/train/make_train.py): every parameter's gradient of
// whole ResNets in train mode and the BatchNorm running statistics after the step, on every
// backend; 5 steps of SGD and of AdamW reproducing torch's losses; the lr schedules' sequences;
// optimizer state dicts that resume exactly. The weights, inputs and batches come from the
// shared fill (test/helpers/fill.ts), so the fixtures hold only torch's results.
//
// Tolerances. Gradients: |ours - torch| <= tol * max|torch grad| per parameter, tol = 1e-4, or
// 3× torch's own float32-vs-float64 distance for that parameter where that is larger (the
// fixture records it: in a deep train-mode network a handful of activations sit within float32
// rounding of a ReLU's kink, and which side they fall on moves the gradients of everything
// below; models.json says how far that goes per model). Losses of the step runs: 1e-4 relative
// at every step. Learning rates: 1e-12 relative (float64 on both sides, same formulas).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tensor } from '../src/core/tensor.js';
import { listBackends, withBackend } from '../src/backends/index.js';
import * as F from '../src/ops/functional.js';
import { getModel, ResNet, Bottleneck } from '../src/index.js';
import * as optim from '../src/optim/index.js';
import type { Module } from '../src/nn/module.js';
import { deterministicInput, deterministicUniform, filledModel } from './helpers/fill.js';
import { fixturePath } from './helpers/paths.js';
import { collectGarbageAfterEachTest } from './helpers/memory.js';

collectGarbageAfterEachTest();

const BACKENDS = listBackends().filter(
  (b) => b !== 'meta' && (!process.env.RESNET_TEST_BACKENDS || process.env.RESNET_TEST_BACKENDS.split(',').includes(b)),
);

function readJson<T>(name: string): T {
  return JSON.parse(readFileSync(fixturePath('train', name), 'utf8')) as T;
}

interface Summary {
  maxAbs: number;
  values: number[];
  float32VsFloat64?: number;
}

interface ModelCase {
  name: string;
  builder?: string;
  block?: 'Bottleneck';
  layers?: number[];
  options: Record<string, unknown>;
  input: number[];
  loss: number;
  labelSmoothing: number;
  float32VsFloat64: number;
  grads: Record<string, Summary>;
  buffers: Record<string, Summary>;
}

const models = readJson<{ samples: number; relTol: number; models: ModelCase[] }>('models.json');
const steps = readJson<{
  model: { builder: string; options: Record<string, unknown>; input: number[] };
  labelSmoothing: number;
  sgd: { lr: number; momentum: number; nesterov: boolean; weight_decay: number };
  adamw: { lr: number; betas: [number, number]; eps: number; weight_decay: number };
  relTol: number;
  runs: Record<'sgd' | 'adamw', { losses: number[]; float32VsFloat64: number; groupSizes: number[] }>;
}>('steps.json');
const schedules = readJson<{ groups: { lr: number }[]; lrs: Record<string, number[][]> }>('schedules.json');

const OPTION_NAMES: Record<string, string> = {
  num_classes: 'numClasses',
  groups: 'groups',
  width_per_group: 'widthPerGroup',
  replace_stride_with_dilation: 'replaceStrideWithDilation',
};

function build(c: { builder?: string; layers?: number[]; options: Record<string, unknown> }): ResNet {
  const options = Object.fromEntries(Object.entries(c.options).map(([k, v]) => [OPTION_NAMES[k], v]));
  if (c.builder) return getModel(c.builder, options) as ResNet;
  return new ResNet(Bottleneck, c.layers!, options);
}

/** Targets as the fixture script makes them: t[n] = (7n + 3) mod classes. */
function targets(n: number, classes: number): Tensor {
  return Tensor.int64(Array.from({ length: n }, (_, i) => (7 * i + 3) % classes));
}

/** The sample indices of make_train.py: floor((k + 0.5) * size / samples), deduplicated. */
function sampleIndices(size: number, samples: number): number[] {
  return [...new Set(Array.from({ length: samples }, (_, k) => Math.floor(((k + 0.5) * size) / samples)))].sort((a, b) => a - b);
}

function compareSummary(actual: Tensor, expected: Summary, tol: number, what: string): void {
  const data = actual.f32;
  let maxAbs = 0;
  for (const v of data) maxAbs = Math.max(maxAbs, Math.abs(v));
  const allowed = tol * expected.maxAbs;
  assert.ok(Math.abs(maxAbs - expected.maxAbs) <= allowed, `${what}: max|.| ${maxAbs}, torch ${expected.maxAbs} (allowed ${allowed.toExponential(2)})`);
  sampleIndices(data.length, models.samples).forEach((index, j) => {
    const diff = Math.abs(data[index] - expected.values[j]);
    assert.ok(diff <= allowed, `${what}[${index}]: ${data[index]}, torch ${expected.values[j]} (|diff| ${diff.toExponential(2)} > ${allowed.toExponential(2)})`);
  });
}

for (const c of models.models) {
  for (const backend of BACKENDS) {
    test(`${c.name} in train mode: loss, every parameter's gradient and the running statistics match torch (${backend})`, () => {
      withBackend(backend, () => {
        const model = filledModel(() => build(c)).train();
        const logits = model.call(deterministicInput(c.input));
        const loss = F.crossEntropy(logits, targets(c.input[0], c.options.num_classes as number), { labelSmoothing: c.labelSmoothing });
        assert.ok(Math.abs(loss.item() - c.loss) <= models.relTol * Math.abs(c.loss), `loss ${loss.item()}, torch ${c.loss}`);
        loss.backward();
        const params = new Map(model.namedParameters());
        assert.deepEqual([...params.keys()], Object.keys(c.grads));
        for (const [key, expected] of Object.entries(c.grads)) {
          const grad = params.get(key)!.grad;
          assert.ok(grad, `${key}: no gradient`);
          compareSummary(grad, expected, Math.max(models.relTol, 3 * (expected.float32VsFloat64 ?? 0)), `${key}.grad`);
        }
        const buffers = new Map(model.namedBuffers());
        for (const [key, expected] of Object.entries(c.buffers)) compareSummary(buffers.get(key)!, expected, models.relTol, key);
      });
    });
  }
}

// --- optimizer steps ----------------------------------------------------------------------------

function makeOptimizer(name: 'sgd' | 'adamw', model: Module): optim.Optimizer<optim.GroupOptions> {
  if (name === 'sgd') {
    const { lr, momentum, nesterov, weight_decay: weightDecay } = steps.sgd;
    return new optim.SGD(optim.setWeightDecay(model, weightDecay, { normWeightDecay: 0, biasWeightDecay: 0 }), { lr, momentum, nesterov });
  }
  const { lr, betas, eps, weight_decay: weightDecay } = steps.adamw;
  return new optim.AdamW(optim.setWeightDecay(model, weightDecay, { normWeightDecay: 0, biasWeightDecay: 0 }), { lr, betas, eps });
}

/** Runs steps [from, to) of the fixture's training loop; returns the losses. */
function trainSteps(model: Module, optimizer: optim.Optimizer<optim.GroupOptions>, from: number, to: number): number[] {
  const shape = steps.model.input;
  const y = targets(shape[0], steps.model.options.num_classes as number);
  const losses: number[] = [];
  for (let step = from; step < to; step++) {
    optimizer.zeroGrad();
    const loss = F.crossEntropy(model.call(deterministicUniform(`batch${step}/${shape.join('x')}`, shape)), y, { labelSmoothing: steps.labelSmoothing });
    loss.backward();
    optimizer.step();
    losses.push(loss.item());
  }
  return losses;
}

for (const name of ['sgd', 'adamw'] as const) {
  const backend = BACKENDS.includes('native') ? 'native' : BACKENDS.includes('wasm') ? 'wasm' : 'ref';
  test(`${name}: 5 steps reproduce torch's losses at every step, with torchvision's weight-decay groups (${backend})`, () => {
    withBackend(backend, () => {
      const model = filledModel(() => build(steps.model)).train();
      const optimizer = makeOptimizer(name, model);
      assert.deepEqual(optimizer.paramGroups.map((g) => g.params.length), steps.runs[name].groupSizes);
      const losses = trainSteps(model, optimizer, 0, steps.runs[name].losses.length);
      losses.forEach((loss, i) => {
        const expected = steps.runs[name].losses[i];
        assert.ok(Math.abs(loss - expected) <= steps.relTol * Math.abs(expected), `step ${i}: loss ${loss}, torch ${expected}`);
      });
    });
  });
}

test('an optimizer and a model restored from state dicts continue exactly as the uninterrupted run', () => {
  withBackend(BACKENDS.includes('native') ? 'native' : 'ref', () => {
    for (const name of ['sgd', 'adamw'] as const) {
      const straight = filledModel(() => build(steps.model)).train();
      const straightLosses = trainSteps(straight, makeOptimizer(name, straight), 0, 3);

      const first = filledModel(() => build(steps.model)).train();
      const firstOptimizer = makeOptimizer(name, first);
      trainSteps(first, firstOptimizer, 0, 2);
      const saved = firstOptimizer.stateDict();
      const weights = new Map([...first.stateDict()].map(([k, t]) => [k, t.clone()]));

      const resumed = filledModel(() => build(steps.model)).train();
      resumed.loadStateDict(weights);
      const resumedOptimizer = makeOptimizer(name, resumed);
      resumedOptimizer.loadStateDict(saved);
      const [loss] = trainSteps(resumed, resumedOptimizer, 2, 3);
      assert.equal(loss, straightLosses[2], `${name}: resumed step 2 loss`);
      for (const [key, t] of resumed.stateDict()) {
        assert.deepEqual(t.data, straight.stateDict().get(key)!.data, `${name}: ${key} after the resumed step`);
      }
    }
  });
});

// --- schedules ----------------------------------------------------------------------------------

function scheduleOptimizer(): optim.SGD {
  const [a, b] = [Tensor.zeros([1]).requiresGrad_(true), Tensor.zeros([1]).requiresGrad_(true)];
  return new optim.SGD([{ params: [a] }, { params: [b], lr: schedules.groups[1].lr }], { lr: schedules.groups[0].lr, momentum: 0.9 });
}

const SCHEDULES: Record<string, (o: optim.SGD) => optim.LRScheduler> = {
  step: (o) => new optim.StepLR(o, 3, 0.5),
  cosine: (o) => new optim.CosineAnnealingLR(o, 10, 1e-4),
  linear: (o) => new optim.LinearLR(o, { startFactor: 0.1, totalIters: 4 }),
  warmup_cosine: (o) =>
    new optim.SequentialLR(o, [new optim.LinearLR(o, { startFactor: 0.01, totalIters: 3 }), new optim.CosineAnnealingLR(o, 7)], [3]),
};

test('StepLR, CosineAnnealingLR, LinearLR and SequentialLR set torch\'s lrs at every step', () => {
  assert.deepEqual(Object.keys(SCHEDULES).sort(), Object.keys(schedules.lrs).sort());
  for (const [name, make] of Object.entries(SCHEDULES)) {
    const optimizer = scheduleOptimizer();
    const scheduler = make(optimizer);
    schedules.lrs[name].forEach((expected, step) => {
      if (step > 0) {
        optimizer.step();
        scheduler.step();
      }
      const lrs = optimizer.paramGroups.map((g) => g.lr);
      expected.forEach((lr, i) => assert.ok(Math.abs(lrs[i] - lr) <= 1e-12 * Math.abs(lr), `${name} step ${step} group ${i}: lr ${lrs[i]}, torch ${lr}`));
    });
  }
});

test('a schedule restored from its state dict continues the sequence', () => {
  const optimizer = scheduleOptimizer();
  const scheduler = SCHEDULES.warmup_cosine(optimizer);
  for (let i = 0; i < 5; i++) scheduler.step();
  const saved = { optimizer: optimizer.stateDict(), scheduler: scheduler.stateDict() };
  const next = (): number[] => {
    scheduler.step();
    return optimizer.paramGroups.map((g) => g.lr);
  };
  const expected = [next(), next()];
  const restoredOptimizer = scheduleOptimizer();
  const restored = SCHEDULES.warmup_cosine(restoredOptimizer);
  restoredOptimizer.loadStateDict(saved.optimizer);
  restored.loadStateDict(saved.scheduler);
  for (const lrs of expected) {
    restored.step();
    assert.deepEqual(restoredOptimizer.paramGroups.map((g) => g.lr), lrs);
  }
});
