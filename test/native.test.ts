// The native backend (csrc/kernels.c in the Node addon) against the reference backend: every
// kernel on named edge cases and seeded random shapes, for each ISA build the CPU runs
// (AVX2+FMA and portable) on 1 and 2 threads; then whole models in eval mode.
// Tolerance: max|native - ref| <= 1e-5 * max|ref| per output (the reference accumulates in
// float64, the kernels in float32: about 1e-6 of that scale at K = 4608); whole models:
// 1e-4 * max|logit|, as the parity tests against torch. Skipped, with the reason shown, where
// the addon is not built.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, type Shape } from '../src/core/tensor.js';
import { Generator } from '../src/core/rng.js';
import { createReferenceBackend, withBackend, type Backend, type Conv2dParams, type Pool2dParams } from '../src/backends/index.js';
import { createNativeBackend, nativeAvailable, type NativeBackend } from '../src/backends/native/index.js';
import { convOutputSize } from '../src/ops/functional.js';
import { getModel, type ResNet } from '../src/index.js';
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

interface ConvCase {
  name: string;
  x: [number, number, number, number];
  /** out channels, kernel h, kernel w */
  w: [number, number, number];
  stride?: [number, number];
  padding?: [number, number];
  dilation?: [number, number];
  groups?: number;
}

const convCases: ConvCase[] = [
  { name: '3 → 5 channels, 3×3 pad 1', x: [1, 3, 9, 11], w: [5, 3, 3], padding: [1, 1] },
  { name: '17 → 17, 1×1 (direct B, partial pixel panel)', x: [1, 17, 5, 7], w: [17, 1, 1] },
  { name: '5 → 13, 1×1, batch 3', x: [3, 5, 4, 4], w: [13, 1, 1] },
  { name: '1×1 spatial, 3×3 pad 1', x: [2, 7, 1, 1], w: [9, 3, 3], padding: [1, 1] },
  { name: '1×1 spatial, 1×1', x: [3, 33, 1, 1], w: [10, 1, 1] },
  { name: 'one output channel', x: [1, 4, 6, 6], w: [1, 3, 3], padding: [1, 1] },
  { name: 'stride 2, odd sizes, 3×3 pad 1', x: [1, 6, 15, 13], w: [8, 3, 3], stride: [2, 2], padding: [1, 1] },
  { name: 'stride 2, odd sizes, 1×1 (downsample)', x: [3, 12, 9, 7], w: [20, 1, 1], stride: [2, 2] },
  { name: 'stem: 7×7 stride 2 pad 3', x: [1, 3, 37, 29], w: [16, 7, 7], stride: [2, 2], padding: [3, 3] },
  // Column stride 2 with output rows of 16+: panels inside one row read phase rows in place.
  { name: 'phase rows: 7×7 stride 2 pad 3, rows of 19, batch 2', x: [2, 3, 40, 38], w: [10, 7, 7], stride: [2, 2], padding: [3, 3] },
  { name: 'phase rows: 3×3 stride 2 pad 1, rows of 35', x: [1, 5, 12, 70], w: [9, 3, 3], stride: [2, 2], padding: [1, 1] },
  { name: 'phase rows: 3×5, dilation (2, 1), pad 2, rows of 20', x: [1, 4, 20, 40], w: [6, 3, 5], stride: [2, 2], padding: [2, 2], dilation: [2, 1] },
  { name: 'phase rows: 112-wide stem rows, 3 threads of slices', x: [1, 3, 64, 224], w: [8, 7, 7], stride: [2, 2], padding: [3, 3] },
  { name: 'dilation 2, pad 2', x: [1, 8, 12, 10], w: [8, 3, 3], padding: [2, 2], dilation: [2, 2] },
  { name: 'dilation 4, pad 4, batch 3', x: [3, 4, 11, 11], w: [6, 3, 3], padding: [4, 4], dilation: [4, 4] },
  { name: 'groups 32, 4 channels per group', x: [1, 128, 9, 9], w: [128, 3, 3], padding: [1, 1], groups: 32 },
  { name: 'groups 32, 16 per group, stride 2, batch 3', x: [3, 512, 7, 7], w: [512, 3, 3], stride: [2, 2], padding: [1, 1], groups: 32 },
  { name: 'groups 64, 4 per group, 1×1 plane', x: [1, 256, 1, 1], w: [256, 3, 3], padding: [1, 1], groups: 64 },
  { name: 'groups 64, 8 per group, 7×7 plane', x: [2, 512, 7, 7], w: [512, 3, 3], padding: [1, 1], groups: 64 },
  { name: 'groups 2, odd per-group counts', x: [1, 10, 6, 5], w: [6, 3, 3], padding: [1, 1], groups: 2 },
  { name: 'many K blocks: 3×3 over 64 channels', x: [1, 64, 8, 8], w: [14, 3, 3], padding: [1, 1] },
  { name: 'many K blocks: 1×1 over 600 channels', x: [1, 600, 5, 5], w: [7, 1, 1] },
  { name: 'several pixel blocks: 40×40 plane', x: [1, 4, 40, 40], w: [8, 3, 3], padding: [1, 1] },
  // Rows at least 16 wide: B rows read in place (indirect micro-kernel), panels crossing rows and borders.
  { name: 'wide rows, dilation 2, pad 2', x: [1, 6, 20, 18], w: [7, 3, 3], padding: [2, 2], dilation: [2, 2] },
  { name: 'wide rows, groups 32, 4 per group, batch 3', x: [3, 128, 18, 17], w: [128, 3, 3], padding: [1, 1], groups: 32 },
  { name: 'wide rows, 1×1 with padding', x: [1, 3, 17, 20], w: [5, 1, 1], padding: [1, 1] },
  { name: 'small plane, many channels (threads split channels)', x: [1, 96, 7, 7], w: [200, 3, 3], padding: [1, 1] },
  { name: '1×3 kernel, stride (2, 1), pad (0, 1)', x: [2, 5, 7, 9], w: [4, 1, 3], stride: [2, 1], padding: [0, 1] },
  { name: '1×1 with padding', x: [1, 3, 4, 5], w: [4, 1, 1], padding: [1, 2] },
  // 3×3 stride 1, at least 16 channels in and out, at least 16 2×2 output tiles: Winograd F(2×2, 3×3).
  { name: 'Winograd: odd plane 13×11, batch 3', x: [3, 16, 13, 11], w: [24, 3, 3], padding: [1, 1] },
  { name: 'Winograd: no padding, odd output 18×17', x: [1, 32, 20, 19], w: [17, 3, 3] },
  { name: 'Winograd: padding 2', x: [2, 16, 9, 10], w: [16, 3, 3], padding: [2, 2] },
  { name: 'Winograd: padding (1, 0)', x: [1, 20, 12, 13], w: [19, 3, 3], padding: [1, 0] },
  { name: 'Winograd: several tile blocks, tile rows crossing panels', x: [1, 16, 40, 37], w: [20, 3, 3], padding: [1, 1] },
  { name: 'Winograd: K blocks (300 channels), 12×12 plane', x: [1, 300, 12, 12], w: [40, 3, 3], padding: [1, 1] },
  { name: 'Winograd: 600 channels, 12×11 plane, batch 2', x: [2, 600, 12, 11], w: [19, 3, 3], padding: [1, 1] },
  { name: 'Winograd: 14×14 plane, 256 → 256 (threads split channels)', x: [1, 256, 14, 14], w: [256, 3, 3], padding: [1, 1] },
  { name: 'Winograd: 7×7 plane (16 tiles, threshold), 512 → 512', x: [1, 512, 7, 7], w: [512, 3, 3], padding: [1, 1] },
  { name: 'direct, not Winograd: 5×5 plane (9 tiles), 64 → 40', x: [2, 64, 5, 5], w: [40, 3, 3], padding: [1, 1] },
];

/** Seeded random geometries over the same knobs. */
function randomConvCases(count: number): ConvCase[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.random() * xs.length)];
  const out: ConvCase[] = [];
  while (out.length < count) {
    const groups = pick([1, 1, 1, 2, 3, 4]);
    const k = pick([1, 1, 3, 3, 5]);
    const stride = pick([1, 1, 2]);
    const dilation = k > 1 ? pick([1, 1, 2]) : 1;
    const padding = pick([0, Math.floor((k * dilation - dilation) / 2)]);
    const x: ConvCase['x'] = [pick([1, 2, 3]), groups * (1 + Math.floor(rng.random() * 9)), 1 + Math.floor(rng.random() * 14), 1 + Math.floor(rng.random() * 14)];
    const outChannels = groups * (1 + Math.floor(rng.random() * 11));
    const c: ConvCase = { name: `random #${out.length}`, x, w: [outChannels, k, k], stride: [stride, stride], padding: [padding, padding], dilation: [dilation, dilation], groups };
    if (convOutputSize(x[2], k, stride, padding, dilation) < 1 || convOutputSize(x[3], k, stride, padding, dilation) < 1) continue;
    out.push(c);
  }
  return out;
}

const epilogues = [
  { name: 'no epilogue', bias: false, residual: false, relu: false },
  { name: 'bias', bias: true, residual: false, relu: false },
  { name: 'relu', bias: false, residual: false, relu: true },
  { name: 'bias + residual', bias: true, residual: true, relu: false },
  { name: 'bias + residual + relu', bias: true, residual: true, relu: true },
  { name: 'residual + relu', bias: false, residual: true, relu: true },
] as const;

function checkConv(backend: NativeBackend, c: ConvCase, epilogue: (typeof epilogues)[number]): void {
  const p: Conv2dParams = { stride: c.stride ?? [1, 1], padding: c.padding ?? [0, 0], dilation: c.dilation ?? [1, 1], groups: c.groups ?? 1 };
  const [batch, channels, h, w] = c.x;
  const [outChannels, kh, kw] = c.w;
  const outH = convOutputSize(h, kh, p.stride[0], p.padding[0], p.dilation[0]);
  const outW = convOutputSize(w, kw, p.stride[1], p.padding[1], p.dilation[1]);
  const x = random(c.x);
  const weight = random([outChannels, channels / p.groups, kh, kw]);
  const bias = epilogue.bias ? random([outChannels]) : null;
  const e = { residual: epilogue.residual ? random([batch, outChannels, outH, outW]) : null, relu: epilogue.relu };
  const expected = ref.conv2d(x, weight, bias, p, outH, outW, e);
  const what = `${backend.isa()} ×${backend.getThreads()} conv ${c.name} [${c.x}] w[${c.w}] ${epilogue.name}`;
  assertCloseToReference(backend.conv2d(x, weight, bias, p, outH, outW, e), expected, REL_TOL, what);
  // Again, from the cached packing.
  assertCloseToReference(backend.conv2d(x, weight, bias, p, outH, outW, e), expected, REL_TOL, `${what} (cached packing)`);
}

function checkOthers(backend: NativeBackend): void {
  const tag = `${backend.isa()} ×${backend.getThreads()}`;
  const pools: [Shape, Pool2dParams][] = [
    [[1, 5, 15, 13], { kernel: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1] }],
    [[3, 3, 8, 8], { kernel: [2, 2], stride: [2, 2], padding: [0, 0], dilation: [1, 1] }],
    [[2, 17, 11, 9], { kernel: [3, 2], stride: [1, 2], padding: [1, 1], dilation: [2, 1] }],
    [[1, 64, 112, 112], { kernel: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1] }],
    [[1, 2, 1, 1], { kernel: [1, 1], stride: [1, 1], padding: [0, 0], dilation: [1, 1] }],
    [[1, 2, 3, 2101], { kernel: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1] }], // rows past the stride-2 path's 2048
    [[1, 3, 9, 10], { kernel: [3, 4], stride: [2, 2], padding: [1, 2], dilation: [1, 1] }], // even kernel, pad 2
  ];
  for (const [shape, p] of pools) {
    const x = random(shape);
    const outH = convOutputSize(shape[2], p.kernel[0], p.stride[0], p.padding[0], p.dilation[0]);
    const outW = convOutputSize(shape[3], p.kernel[1], p.stride[1], p.padding[1], p.dilation[1]);
    assertCloseToReference(backend.maxPool2d(x, p, outH, outW), ref.maxPool2d(x, p, outH, outW), 0, `${tag} maxPool2d [${shape}]`);
  }
  const withNaN = random([1, 1, 4, 4]);
  withNaN.f32[5] = NaN;
  const pooled = backend.maxPool2d(withNaN, { kernel: [2, 2], stride: [2, 2], padding: [0, 0], dilation: [1, 1] }, 2, 2);
  assert.ok(Number.isNaN(pooled.f32[0]) && !Number.isNaN(pooled.f32[3]), `${tag} maxPool2d propagates NaN`);

  for (const [shape, outH, outW] of [[[1, 2048, 7, 7], 1, 1], [[3, 5, 7, 10], 3, 4], [[1, 3, 4, 4], 8, 8], [[2, 1, 1, 1], 1, 1]] as const) {
    const x = random(shape);
    assertCloseToReference(backend.adaptiveAvgPool2d(x, outH, outW), ref.adaptiveAvgPool2d(x, outH, outW), REL_TOL, `${tag} adaptiveAvgPool2d [${shape}] → ${outH}×${outW}`);
  }
  for (const [batch, inFeatures, outFeatures] of [[1, 2048, 1000], [3, 17, 5], [1, 1, 1], [2, 33, 70]] as const) {
    const x = random([batch, inFeatures]);
    const weight = random([outFeatures, inFeatures]);
    for (const bias of [random([outFeatures]), null]) {
      assertCloseToReference(backend.linear(x, weight, bias), ref.linear(x, weight, bias), REL_TOL, `${tag} linear ${batch}×${inFeatures} → ${outFeatures}${bias ? ' + bias' : ''}`);
    }
  }
  for (const shape of [[1, 3, 224, 224], [3, 5, 1, 1], [2, 17, 7, 7], [1, 64, 56, 56]] as const) {
    const x = random(shape);
    const scale = random([shape[1]]).f32;
    const shift = random([shape[1]]).f32;
    assertCloseToReference(backend.channelAffine(x, scale, shift), ref.channelAffine(x, scale, shift), REL_TOL, `${tag} channelAffine [${shape}]`);
    const y = random(shape);
    assertCloseToReference(backend.add(x, y), ref.add(x, y), REL_TOL, `${tag} add [${shape}]`);
    assertCloseToReference(backend.relu(x), ref.relu(x), 0, `${tag} relu [${shape}]`);
  }
  const odd = Tensor.from([-1, 2, NaN, -0, 3.5, -7, 1e-30]);
  assert.deepEqual([...backend.relu(odd).f32], [...ref.relu(odd).f32], `${tag} relu of NaN, -0 and denormals as the reference`);
  const moments = backend.channelMoments(random([2, 3, 4, 4]));
  assert.equal(moments.mean.length, 3);
}

const convRandom = randomConvCases(24);

test('native backend: every kernel matches the reference', { skip }, async (t) => {
  const isas = createNativeBackend().isas();
  for (const isa of isas) {
    for (const threads of [1, 2]) {
      const backend = createNativeBackend({ isa, threads });
      await t.test(`${isa}, ${threads} thread${threads > 1 ? 's' : ''}: convolution, named cases × epilogues`, () => {
        for (const c of convCases) for (const e of epilogues) checkConv(backend, c, e);
      });
      await t.test(`${isa}, ${threads} thread${threads > 1 ? 's' : ''}: convolution, random shapes`, () => {
        for (const [i, c] of convRandom.entries()) checkConv(backend, c, epilogues[i % epilogues.length]);
      });
      await t.test(`${isa}, ${threads} thread${threads > 1 ? 's' : ''}: pooling, linear, elementwise`, () => checkOthers(backend));
    }
  }
});

test('native backend: a weight changed in place is packed again', { skip }, () => {
  const backend = createNativeBackend();
  const x = random([1, 4, 5, 5]);
  const weight = random([6, 4, 3, 3]);
  const p: Conv2dParams = { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
  backend.conv2d(x, weight, null, p, 5, 5);
  weight.f32.fill(0.5);
  assertCloseToReference(backend.conv2d(x, weight, null, p, 5, 5), ref.conv2d(x, weight, null, p, 5, 5), REL_TOL, 'repacked');
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
  // A model's forward pass releases its blocks' intermediates and stays right.
  const model = filled('resnet50');
  const input = deterministicInput([1, 3, 64, 64]);
  const expected = withBackend('ref', () => model.forward(input));
  for (let i = 0; i < 2; i++) {
    assertCloseToReference(withBackend('native', () => model.forward(input)), expected, MODEL_REL_TOL, `resnet50, pass ${i + 1}`);
  }
});

test('native backend: a forward pass frees block inputs it owns, never a tensor a hook saw', { skip }, () => {
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

function filled(name: string): ResNet {
  return filledModel(() => getModel(name)).eval();
}

function forward(model: ResNet, backend: string | Backend, x: Tensor): Tensor {
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
