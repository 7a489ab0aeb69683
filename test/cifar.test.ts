// The CIFAR ResNets (He et al. 2015, §4.2) against the torch network of
// test/fixtures/cifar/make_cifar.py (the common PyTorch implementation with option-A shortcuts),
// both filled by the formula of test/helpers/fill.ts: eval logits on every backend within
// 1e-4 of max|logit| (manifest.json's relTol; torch's float32 and float64 runs part by ~2e-7 of
// it), state-dict keys, parameter counts (the paper's, to its rounding, and torch's exactly);
// the option-A op, its gradient and its ONNX export; inChannels on torchvision's builders.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { getModel, listBackends, listModels, CifarResNet, type BuilderOptions } from '../src/index.js';
import { withBackend } from '../src/backends/index.js';
import { Tensor } from '../src/core/tensor.js';
import { Generator } from '../src/core/rng.js';
import * as F from '../src/ops/functional.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { exportOnnx, ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from '../src/tools/onnx.js';
import { summarize } from '../src/tools/summary.js';
import { drawDiagram } from '../src/tools/diagram.js';
import { assertCloseToReference } from './helpers/compare.js';
import { deterministicInput, filledModel, uninitialised } from './helpers/fill.js';
import { fixturePath } from './helpers/paths.js';

interface CifarCase {
  name: string;
  builder: string;
  options: { num_classes?: number; in_channels?: number };
  input: number[];
}

interface Manifest {
  relTol: number;
  params: Record<string, number>;
  cases: CifarCase[];
}

const manifest = JSON.parse(readFileSync(fixturePath('cifar', 'manifest.json'), 'utf8')) as Manifest;
const keys = JSON.parse(readFileSync(fixturePath('cifar', 'keys.json'), 'utf8')) as [string, number[], string][];
const logits = readSafetensors(readFileSync(fixturePath('cifar', 'logits.safetensors')));

const BACKENDS = listBackends().filter(
  (b) => b !== 'meta' && (!process.env.RESNET_TEST_BACKENDS || process.env.RESNET_TEST_BACKENDS.split(',').includes(b)),
);

function options(c: CifarCase): BuilderOptions {
  return { numClasses: c.options.num_classes, inChannels: c.options.in_channels };
}

test('parameter counts: the paper\'s 0.27/0.46/0.66/0.85/1.7 M (Table 6) and torch\'s exact counts', () => {
  // He et al. 2015, Table 6, "# params" column, as printed (two significant digits).
  const paper: Record<string, number> = { resnet20: 0.27, resnet32: 0.46, resnet44: 0.66, resnet56: 0.85, resnet110: 1.7 };
  assert.deepEqual(listModels('cifar'), Object.keys(paper));
  for (const name of listModels('cifar')) {
    const s = summarize(uninitialised(() => getModel(name)), [1, 3, 32, 32]);
    assert.equal(s.totalParams, manifest.params[name], `${name}: torch's count`);
    const printed = paper[name] >= 1 ? 1 : 2; // decimals the paper prints
    assert.equal(Number((s.totalParams / 1e6).toFixed(printed)), paper[name], `${name}: ${s.totalParams}`);
    assert.deepEqual(s.outputShape, [1, 10]);
  }
});

test('resnet20: state-dict keys, shapes and dtypes equal the torch network\'s, in order', () => {
  const model = uninitialised(() => getModel('resnet20'));
  assert.deepEqual([...model.stateDict()].map(([k, t]) => [k, [...t.shape], t.dtype]), keys);
});

for (const c of manifest.cases) {
  test(`eval logits of ${c.name} match torch on every backend`, async (t) => {
    const model = filledModel(() => getModel(c.builder, options(c))).eval();
    assert.ok(model instanceof CifarResNet);
    const input = deterministicInput(c.input);
    const expected = logits.get(c.name)!;
    for (const backend of BACKENDS) {
      await t.test(backend, () => {
        const y = withBackend(backend, () => model.forward(input));
        assertCloseToReference(y, expected, manifest.relTol, `${c.name} on ${backend}`);
      });
    }
  });
}

test('subsamplePadChannels: x[:, :, ::s, ::s] with zero channels before and after, ceil sizes', () => {
  const x = new Tensor(Float32Array.from({ length: 2 * 3 * 5 * 4 }, (_, i) => i + 1), [2, 3, 5, 4]);
  const y = F.subsamplePadChannels(x, 2, 1, 2);
  assert.deepEqual(y.shape, [2, 6, 3, 2]);
  for (let n = 0; n < 2; n++) {
    for (let c = 0; c < 6; c++) {
      for (let h = 0; h < 3; h++) {
        for (let w = 0; w < 2; w++) {
          const inside = c >= 1 && c < 4;
          const expected = inside ? x.f32[((n * 3 + c - 1) * 5 + 2 * h) * 4 + 2 * w] : 0;
          assert.equal(y.f32[((n * 6 + c) * 3 + h) * 2 + w], expected, `[${n}, ${c}, ${h}, ${w}]`);
        }
      }
    }
  }
  assert.throws(() => F.subsamplePadChannels(x, 0, 0, 0), /stride must be a positive integer/);
  assert.throws(() => F.subsamplePadChannels(x, 2, -1, 0), /before must be a non-negative integer/);
  assert.throws(() => F.subsamplePadChannels(x.reshape([6, 5, 4]), 2, 0, 0), /expected a 4-D/);
});

test('subsamplePadChannelsBackward is the adjoint of the forward: <f(x), g> = <x, f*(g)>', () => {
  // The op is linear, so its gradient is its adjoint; float64 sums of float32 products.
  const rng = new Generator(3);
  const cases: [number[], number, number, number][] = [[[2, 3, 7, 6], 2, 1, 2], [[1, 4, 8, 8], 2, 2, 2], [[1, 2, 5, 5], 3, 0, 1], [[1, 2, 3, 3], 1, 0, 0]];
  for (const [shape, stride, before, after] of cases) {
    const x = new Tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.uniform(-1, 1)), shape);
    const y = F.subsamplePadChannels(x, stride, before, after);
    const g = new Tensor(Float32Array.from({ length: y.size }, () => rng.uniform(-1, 1)), y.shape);
    const gx = F.subsamplePadChannelsBackward(g, x.shape, stride, before);
    assert.deepEqual(gx.shape, x.shape);
    let lhs = 0;
    let rhs = 0;
    for (let i = 0; i < y.size; i++) lhs += y.f32[i] * g.f32[i];
    for (let i = 0; i < x.size; i++) rhs += x.f32[i] * gx.f32[i];
    assert.ok(Math.abs(lhs - rhs) <= 1e-9 * Math.max(1, Math.abs(lhs)), `${shape} stride ${stride}: ${lhs} vs ${rhs}`);
    // Pixels the stride skips get no gradient.
    if (stride > 1) assert.equal(gx.f32[1], 0);
  }
});

test('ONNX export of resnet20 (option-A shortcut as Slice + Pad): onnxruntime gives our logits', async () => {
  for (const [inChannels, shape] of [[3, [2, 3, 32, 32]], [1, [1, 1, 29, 31]]] as const) {
    const model = filledModel(() => getModel('resnet20', { inChannels })).eval();
    const session = await ort.InferenceSession.create(exportOnnx(model));
    try {
      const x = deterministicInput(shape);
      const result = await session.run({ [ONNX_INPUT_NAME]: new ort.Tensor('float32', x.f32, shape) });
      const y = result[ONNX_OUTPUT_NAME];
      assertCloseToReference(new Tensor(Float32Array.from(y.data as Float32Array), y.dims), model.forward(x), 1e-4, `resnet20 ${shape.join('x')}`);
    } finally {
      await session.release();
    }
  }
});

test('summary and diagram of resnet20: three stages, no max pool, option-A shortcuts drawn', () => {
  const model = uninitialised(() => getModel('resnet20', { inChannels: 1 }));
  const s = summarize(model, [1, 1, 28, 28]);
  const shapes = new Map(s.layers.map((l) => [l.name, l.outputShape]));
  assert.deepEqual(shapes.get('layer1'), [1, 16, 28, 28]);
  assert.deepEqual(shapes.get('layer2.0.downsample'), [1, 32, 14, 14]);
  assert.deepEqual(shapes.get('layer3'), [1, 64, 7, 7]);
  const svg = drawDiagram(model, [1, 28, 28], { title: 'resnet20' });
  assert.match(svg, /shortcut A/);
  assert.doesNotMatch(svg, /max pool/);
  assert.match(svg, /data-names="layer3"/);
  assert.doesNotMatch(svg, /data-names="layer4"/);
});

test('inChannels: conv1 of every builder takes that many channels; torchvision\'s weights refuse any but 3', async () => {
  for (const name of listModels()) {
    const model = uninitialised(() => getModel(name, { inChannels: 1 }));
    assert.deepEqual(model.conv1.weight.shape.slice(0, 2), [model.conv1.outChannels, 1], name);
  }
  const model = getModel('resnet18', { inChannels: 1, numClasses: 10, seed: 0 }).eval();
  assert.deepEqual(model.forward(deterministicInput([2, 1, 28, 28])).shape, [2, 10]);
  await assert.rejects(getModel('resnet18', { inChannels: 1, weights: 'IMAGENET1K_V1' }), /takes 3 input channels \(RGB\), not inChannels 1/);
});
