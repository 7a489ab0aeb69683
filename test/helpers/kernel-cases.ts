// The kernel cases every fast backend runs against the reference (test/kernels.test.ts): the
// named edge cases of the C kernels (remainders of the register tile and of the cache blocks,
// strides, dilations, groups, phase rows, Winograd's thresholds), seeded random geometries,
// and the pooling, linear and elementwise ops. One list, so that native and wasm, and every
// ISA build of each, face the same cases.

import { Tensor, type Shape } from '../../src/core/tensor.js';
import { Generator } from '../../src/core/rng.js';
import { convOutputSize } from '../../src/ops/functional.js';
import type { Conv2dParams, Pool2dParams } from '../../src/backends/index.js';

export interface ConvCase {
  name: string;
  x: [number, number, number, number];
  /** out channels, kernel h, kernel w */
  w: [number, number, number];
  stride?: [number, number];
  padding?: [number, number];
  dilation?: [number, number];
  groups?: number;
}

export const convCases: ConvCase[] = [
  { name: '3 → 5 channels, 3×3 pad 1', x: [1, 3, 9, 11], w: [5, 3, 3], padding: [1, 1] },
  { name: '5 → 17 channels, 3×3 pad 1, batch 3', x: [3, 5, 9, 11], w: [17, 3, 3], padding: [1, 1] },
  { name: '17 → 17, 1×1 (direct B, partial pixel panel)', x: [1, 17, 5, 7], w: [17, 1, 1] },
  { name: '17 → 3, 1×1 (fewer rows than a panel)', x: [1, 17, 5, 7], w: [3, 1, 1] },
  { name: '5 → 13, 1×1, batch 3', x: [3, 5, 4, 4], w: [13, 1, 1] },
  { name: '1×1 spatial, 3×3 pad 1', x: [2, 7, 1, 1], w: [9, 3, 3], padding: [1, 1] },
  { name: '1×1 spatial, 1×1', x: [3, 33, 1, 1], w: [10, 1, 1] },
  { name: 'one output channel', x: [1, 4, 6, 6], w: [1, 3, 3], padding: [1, 1] },
  { name: '13 output channels (12-row tile + 1), 40×40 plane', x: [1, 8, 40, 40], w: [13, 1, 1] },
  { name: '25 output channels (two 12-row tiles + 1), 33 pixels wide', x: [1, 9, 3, 33], w: [25, 3, 3], padding: [1, 1] },
  { name: 'stride 2, odd sizes, 3×3 pad 1', x: [1, 6, 15, 13], w: [8, 3, 3], stride: [2, 2], padding: [1, 1] },
  { name: 'stride 2, odd sizes, 1×1 (downsample)', x: [3, 12, 9, 7], w: [20, 1, 1], stride: [2, 2] },
  { name: '1×1 stride 2 (downsample), 15×15', x: [1, 16, 15, 15], w: [32, 1, 1], stride: [2, 2] },
  { name: 'stem: 7×7 stride 2 pad 3', x: [1, 3, 37, 29], w: [16, 7, 7], stride: [2, 2], padding: [3, 3] },
  // Column stride 2 with output rows of 16+: panels inside one row read phase rows in place.
  { name: 'phase rows: 7×7 stride 2 pad 3, rows of 19, batch 2', x: [2, 3, 40, 38], w: [10, 7, 7], stride: [2, 2], padding: [3, 3] },
  { name: 'phase rows: 3×3 stride 2 pad 1, rows of 35', x: [1, 5, 12, 70], w: [9, 3, 3], stride: [2, 2], padding: [1, 1] },
  { name: 'phase rows: 3×5, dilation (2, 1), pad 2, rows of 20', x: [1, 4, 20, 40], w: [6, 3, 5], stride: [2, 2], padding: [2, 2], dilation: [2, 1] },
  { name: 'phase rows: 112-wide stem rows, 3 threads of slices', x: [1, 3, 64, 224], w: [8, 7, 7], stride: [2, 2], padding: [3, 3] },
  { name: 'dilation 2, pad 2', x: [1, 8, 12, 10], w: [8, 3, 3], padding: [2, 2], dilation: [2, 2] },
  { name: 'dilation 2 without padding', x: [2, 4, 11, 9], w: [6, 3, 3], dilation: [2, 2] },
  { name: 'dilation 4, pad 4, batch 3', x: [3, 4, 11, 11], w: [6, 3, 3], padding: [4, 4], dilation: [4, 4] },
  { name: 'groups 32, 4 channels per group', x: [1, 128, 9, 9], w: [128, 3, 3], padding: [1, 1], groups: 32 },
  { name: 'groups 32, 16 per group, stride 2, batch 3', x: [3, 512, 7, 7], w: [512, 3, 3], stride: [2, 2], padding: [1, 1], groups: 32 },
  { name: 'groups 64, 2 per group, stride 2', x: [1, 128, 7, 7], w: [128, 3, 3], stride: [2, 2], padding: [1, 1], groups: 64 },
  { name: 'groups 64, 4 per group, 1×1 plane', x: [1, 256, 1, 1], w: [256, 3, 3], padding: [1, 1], groups: 64 },
  { name: 'groups 64, 8 per group, 7×7 plane', x: [2, 512, 7, 7], w: [512, 3, 3], padding: [1, 1], groups: 64 },
  { name: 'groups 2, odd per-group counts', x: [1, 10, 6, 5], w: [6, 3, 3], padding: [1, 1], groups: 2 },
  { name: 'many K blocks: 3×3 over 64 channels', x: [1, 64, 8, 8], w: [14, 3, 3], padding: [1, 1] },
  { name: 'many K blocks: 1×1 over 600 channels', x: [1, 600, 5, 5], w: [7, 1, 1] },
  { name: 'many pixels (several NC blocks), 1×1 K 300', x: [1, 300, 17, 19], w: [7, 1, 1] },
  { name: 'several pixel blocks: 40×40 plane', x: [1, 4, 40, 40], w: [8, 3, 3], padding: [1, 1] },
  // Rows at least a panel wide: B rows read in place (indirect micro-kernel), panels crossing rows and borders.
  { name: 'wide rows, dilation 2, pad 2', x: [1, 6, 20, 18], w: [7, 3, 3], padding: [2, 2], dilation: [2, 2] },
  { name: 'wide rows, groups 32, 4 per group, batch 3', x: [3, 128, 18, 17], w: [128, 3, 3], padding: [1, 1], groups: 32 },
  { name: 'rows of 40, groups 4, 3×3 (indirect with 32-pixel panels)', x: [2, 16, 9, 40], w: [12, 3, 3], padding: [1, 1], groups: 4 },
  { name: 'wide rows, 1×1 with padding', x: [1, 3, 17, 20], w: [5, 1, 1], padding: [1, 1] },
  { name: 'small plane, many channels (threads split channels)', x: [1, 96, 7, 7], w: [200, 3, 3], padding: [1, 1] },
  { name: '1×3 kernel, stride (2, 1), pad (0, 1)', x: [2, 5, 7, 9], w: [4, 1, 3], stride: [2, 1], padding: [0, 1] },
  { name: '1×1 with padding', x: [1, 3, 4, 5], w: [4, 1, 1], padding: [1, 2] },
  // 3×3 stride 1, at least 16 channels in and out, at least 16 2×2 output tiles, and at least the
  // build's RK_WINO_MIN_CHANNELS input channels (128 on AVX-512, 64 on AVX2, 32 on 4-float
  // vectors; fewer on planes of 28×28 and up): Winograd F(2×2, 3×3); other stride-1
  // convolutions of one group: padded planes (csrc/kernels/conv-padded.c). The cases below sit
  // on both sides of every build's threshold.
  { name: 'padded planes: odd plane 13×11, batch 3', x: [3, 16, 13, 11], w: [24, 3, 3], padding: [1, 1] },
  { name: '32 channels (padded planes, Winograd on 4-float vectors): no padding, odd output 18×17', x: [1, 32, 20, 19], w: [17, 3, 3] },
  { name: 'Winograd: no padding, odd output 28×27, 64 channels', x: [1, 64, 30, 29], w: [17, 3, 3] },
  { name: 'padded planes: padding 2', x: [2, 16, 9, 10], w: [16, 3, 3], padding: [2, 2] },
  { name: 'Winograd: padding 2, 128 channels', x: [1, 128, 9, 10], w: [16, 3, 3], padding: [2, 2] },
  { name: 'padded planes: padding (1, 0)', x: [1, 20, 12, 13], w: [19, 3, 3], padding: [1, 0] },
  { name: 'Winograd: padding (1, 0), 130 channels', x: [1, 130, 12, 13], w: [19, 3, 3], padding: [1, 0] },
  { name: 'padded planes: several pixel chunks, rows crossing panels', x: [1, 16, 40, 37], w: [20, 3, 3], padding: [1, 1] },
  { name: 'Winograd: several tile blocks, tile rows crossing panels', x: [1, 64, 40, 37], w: [20, 3, 3], padding: [1, 1] },
  { name: 'padded planes: a CIFAR stage, 16 → 16 at 28×28, batch 4', x: [4, 16, 28, 28], w: [16, 3, 3], padding: [1, 1] },
  { name: '64 → 64 at 7×7, batch 3 (padded planes on AVX-512, else Winograd)', x: [3, 64, 7, 7], w: [64, 3, 3], padding: [1, 1] },
  { name: 'padded planes: 5×5 kernel, dilation (1, 2), pad (2, 4)', x: [2, 6, 11, 13], w: [5, 5, 5], padding: [2, 4], dilation: [1, 2] },
  { name: 'Winograd: K blocks (300 channels), 12×12 plane', x: [1, 300, 12, 12], w: [40, 3, 3], padding: [1, 1] },
  { name: 'Winograd: 600 channels, 12×11 plane, batch 2', x: [2, 600, 12, 11], w: [19, 3, 3], padding: [1, 1] },
  { name: 'Winograd: 14×14 plane, 256 → 256 (threads split channels)', x: [1, 256, 14, 14], w: [256, 3, 3], padding: [1, 1] },
  { name: 'Winograd: 7×7 plane (16 tiles, threshold), 512 → 512', x: [1, 512, 7, 7], w: [512, 3, 3], padding: [1, 1] },
  { name: 'Winograd: 7×7 plane, 128 → 96', x: [1, 128, 7, 7], w: [96, 3, 3], padding: [1, 1] },
  { name: 'direct, not Winograd: 5×5 plane (9 tiles), 64 → 40', x: [2, 64, 5, 5], w: [40, 3, 3], padding: [1, 1] },
  // Winograd F(4×4, 3×3) on 4-float vectors (RK_WINO4_MIN_TILES: at least 16 tiles of 4×4, the
  // last ones overhanging where a side is not a multiple of 4); F(2×2, 3×3) or padded planes on
  // the wider builds.
  { name: 'Winograd F(4, 3) on 4-float vectors: 28×28, 32 → 20, padding 1', x: [1, 32, 28, 28], w: [20, 3, 3], padding: [1, 1] },
  { name: 'Winograd F(4, 3): no padding, 32×28 output, batch 2, 48 channels', x: [2, 48, 34, 30], w: [17, 3, 3] },
  { name: 'Winograd F(4, 3): padding (2, 0), 28×28 output', x: [1, 40, 26, 30], w: [16, 3, 3], padding: [2, 0] },
  { name: 'Winograd F(4, 3): K blocks (300 channels) at 28×28', x: [1, 300, 28, 28], w: [24, 3, 3], padding: [1, 1] },
  { name: "Winograd F(4, 3): ResNet-18's first stage, 64 → 64 at 56×56", x: [1, 64, 56, 56], w: [64, 3, 3], padding: [1, 1] },
  { name: 'Winograd F(4, 3), tiles overhanging: 28×26 output (a side not a multiple of 4), 32 channels', x: [1, 32, 28, 26], w: [12, 3, 3], padding: [1, 1] },
  { name: "Winograd F(4, 3), tiles overhanging both sides: ResNet's 14×14 stage, 256 → 256", x: [1, 256, 14, 14], w: [64, 3, 3], padding: [1, 1] },
  { name: 'Winograd F(4, 3), fewest tiles (16 of 4×4 at 13×13, no padding), 64 channels', x: [2, 64, 15, 15], w: [24, 3, 3] },
  { name: 'Winograd F(2, 3), not F(4, 3): 9×9 output (9 tiles of 4×4, too few), 64 channels', x: [1, 64, 9, 9], w: [16, 3, 3], padding: [1, 1] },
];

/** Seeded random geometries over the same knobs. */
export function randomConvCases(seed: number, count: number): ConvCase[] {
  const rng = new Generator(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.random() * xs.length)];
  const out: ConvCase[] = [];
  while (out.length < count) {
    const groups = pick([1, 1, 1, 2, 3, 4]);
    const k = pick([1, 1, 3, 3, 5]);
    const stride = pick([1, 1, 2]);
    const dilation = k > 1 ? pick([1, 1, 2]) : 1;
    const padding = pick([0, Math.floor((k * dilation - dilation) / 2)]);
    const x: ConvCase['x'] = [pick([1, 2, 3]), groups * (1 + Math.floor(rng.random() * 9)), 1 + Math.floor(rng.random() * 40), 1 + Math.floor(rng.random() * 40)];
    const outChannels = groups * (1 + Math.floor(rng.random() * 14));
    if (convOutputSize(x[2], k, stride, padding, dilation) < 1 || convOutputSize(x[3], k, stride, padding, dilation) < 1) continue;
    out.push({ name: `random #${out.length}`, x, w: [outChannels, k, k], stride: [stride, stride], padding: [padding, padding], dilation: [dilation, dilation], groups });
  }
  return out;
}

export const epilogues = [
  { name: 'no epilogue', bias: false, residual: false, relu: false },
  { name: 'bias', bias: true, residual: false, relu: false },
  { name: 'relu', bias: false, residual: false, relu: true },
  { name: 'bias + residual', bias: true, residual: true, relu: false },
  { name: 'bias + residual + relu', bias: true, residual: true, relu: true },
  { name: 'residual + relu', bias: false, residual: true, relu: true },
] as const;

export type Epilogue = (typeof epilogues)[number];

/** One convolution's arguments, seeded. */
export function convArguments(rng: Generator, c: ConvCase, epilogue: Epilogue) {
  const p: Conv2dParams = { stride: c.stride ?? [1, 1], padding: c.padding ?? [0, 0], dilation: c.dilation ?? [1, 1], groups: c.groups ?? 1 };
  const [batch, channels, h, w] = c.x;
  const [outChannels, kh, kw] = c.w;
  const outH = convOutputSize(h, kh, p.stride[0], p.padding[0], p.dilation[0]);
  const outW = convOutputSize(w, kw, p.stride[1], p.padding[1], p.dilation[1]);
  const x = random(rng, c.x);
  const weight = random(rng, [outChannels, channels / p.groups, kh, kw]);
  const bias = epilogue.bias ? random(rng, [outChannels]) : null;
  const ep = { residual: epilogue.residual ? random(rng, [batch, outChannels, outH, outW]) : null, relu: epilogue.relu };
  return { x, weight, bias, p, outH, outW, ep };
}

export function random(rng: Generator, shape: Shape, low = -1, high = 1): Tensor {
  const t = Tensor.zeros(shape);
  const d = t.f32;
  for (let i = 0; i < d.length; i++) d[i] = rng.uniform(low, high);
  return t;
}

export const poolCases: [Shape, Pool2dParams][] = [
  [[1, 5, 15, 13], { kernel: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1] }],
  [[3, 3, 8, 8], { kernel: [2, 2], stride: [2, 2], padding: [0, 0], dilation: [1, 1] }],
  [[2, 17, 11, 9], { kernel: [3, 2], stride: [1, 2], padding: [1, 1], dilation: [2, 1] }],
  [[1, 64, 112, 112], { kernel: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1] }],
  [[1, 2, 1, 1], { kernel: [1, 1], stride: [1, 1], padding: [0, 0], dilation: [1, 1] }],
  [[1, 2, 3, 2101], { kernel: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1] }], // rows past the stride-2 path's 2048
  [[1, 3, 9, 10], { kernel: [3, 4], stride: [2, 2], padding: [1, 2], dilation: [1, 1] }], // even kernel, pad 2
  [[1, 4, 1, 1], { kernel: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1] }], // a window mostly padding
];

export const adaptiveCases: [Shape, number, number][] = [[[1, 2048, 7, 7], 1, 1], [[3, 5, 7, 10], 3, 4], [[1, 3, 4, 4], 8, 8], [[2, 1, 1, 1], 1, 1], [[1, 17, 9, 4], 4, 4], [[2, 3, 1, 1], 2, 3]];
export const linearCases: [number, number, number][] = [[1, 2048, 1000], [3, 17, 5], [1, 1, 1], [2, 33, 70], [3, 2048, 13], [1, 512, 1000]];
/** Sizes that are not multiples of any vector width. */
export const elementwiseShapes: Shape[] = [[1, 3, 224, 224], [3, 5, 1, 1], [2, 17, 7, 7], [1, 64, 56, 56], [1, 1, 1, 33]];

/**
 * Convolutions whose gradients cross the backward GEMMs' blocks (besides convCases): more
 * output channels than a K block of the input gradient (KC = 256), weight-gradient columns
 * (C/groups·kh·kw) over a column chunk (NC) and a whole number of panels, many images to split.
 */
export const backwardConvCases: ConvCase[] = [
  { name: 'backward: 300 output channels (two K blocks of the input gradient)', x: [1, 8, 6, 6], w: [300, 3, 3], padding: [1, 1] },
  { name: 'backward: 300 output channels, 1×1 (direct input gradient)', x: [2, 20, 5, 5], w: [300, 1, 1] },
  { name: 'backward: 40 input channels × 3×3 = 360 weight-gradient columns', x: [2, 40, 6, 7], w: [9, 3, 3], padding: [1, 1] },
  { name: 'backward: 32 columns exactly (one AVX-512 panel)', x: [1, 32, 5, 5], w: [5, 1, 1] },
  { name: 'backward: 5 images over threads, stride 2', x: [5, 6, 9, 9], w: [7, 3, 3], stride: [2, 2], padding: [1, 1] },
  { name: 'backward: 2 channels, 16 blocks of a single image', x: [1, 2, 11, 11], w: [4, 5, 5], padding: [2, 2] },
  { name: 'backward: depthwise 3×3 stride 2', x: [2, 16, 9, 8], w: [16, 3, 3], stride: [2, 2], padding: [1, 1], groups: 16 },
  { name: 'backward: kernel larger than the padded input is wide', x: [1, 3, 3, 3], w: [2, 3, 3], padding: [0, 0] },
];

/** matmul shapes (m, n, k): linear's gradients at ResNet sizes, remainders of the tiles, k = 0 and k over a K block. */
export const matmulCases: [number, number, number][] = [
  [16, 512, 10], [10, 512, 16], [128, 64, 10], [3, 5, 7], [1, 1, 1], [13, 33, 300], [40, 70, 0], [7, 1000, 2048],
];
