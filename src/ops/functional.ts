// The ops layer: every tensor operation the network uses, with its argument and shape
// checks and its output-size arithmetic, dispatched to the current backend. Modules call
// only these functions, so this is where the trace (src/ops/trace.ts) and autograd
// (src/ops/autograd.ts) record: each op's backward sits under its forward, names the values
// the forward saved for it, and calls the backend's backward kernels (the reference's where
// the backend lacks one). Arguments are checked here, once, before any backend sees them:
// every backend then fails alike (a ShapeError or RangeError with the same message), and
// backends hold no checks of their own.
// An output with no elements (batch 0) is made here too, as torch returns one.

import { Tensor, numel, shapeToString, shapesEqual, type Shape } from '../core/tensor.js';
import { getBackend, type Conv2dParams, type ConvEpilogue, type Pool2dParams } from '../backends/index.js';
import { recordOp, type BatchNormArgs } from './trace.js';
import { backwardKernels, needsGraph, record } from './autograd.js';

export type { BatchNormArgs } from './trace.js';

export type Pair = readonly [number, number];

export class ShapeError extends RangeError {
  override name = 'ShapeError';
}

function describe(x: Tensor): string {
  return shapeToString(x.shape);
}

function expect4d(x: Tensor, op: string): void {
  if (x.ndim !== 4) throw new ShapeError(`${op}: expected a 4-D (N, C, H, W) input, got shape ${describe(x)}`);
  if (x.dtype !== 'float32') throw new TypeError(`${op}: expected a float32 input, got ${x.dtype}`);
}

function describePair(p: Pair): string {
  return `${p[0]}×${p[1]}`;
}

function isPair(p: Pair, valid: (v: number) => boolean): boolean {
  return Array.isArray(p) && p.length === 2 && p.every((v) => Number.isSafeInteger(v) && valid(v));
}

/**
 * The window arguments of a convolution or pooling, as torch checks them: kernel, stride and
 * dilation positive integers, padding a non-negative integer, each a (height, width) pair.
 * The layers' constructors call this too, so a bad argument fails where it is given.
 */
export function checkWindowArgs(op: string, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair): void {
  if (!isPair(kernel, (v) => v >= 1)) throw new ShapeError(`${op}: kernel size must be positive integers, got ${describePair(kernel)}`);
  if (!isPair(stride, (v) => v >= 1)) throw new RangeError(`${op}: stride must be positive integers, got ${describePair(stride)}`);
  if (!isPair(padding, (v) => v >= 0)) throw new RangeError(`${op}: padding must be non-negative integers, got ${describePair(padding)}`);
  if (!isPair(dilation, (v) => v >= 1)) throw new RangeError(`${op}: dilation must be positive integers, got ${describePair(dilation)}`);
}

/**
 * An output of `shape` with no elements (a batch of 0), made here so that no backend is asked
 * for one; null when there is work to do. Meta tensors go to the meta backend as ever.
 */
function emptyOutput(x: Tensor, shape: Shape): Tensor | null {
  return numel(shape) === 0 && !x.isMeta ? Tensor.zeros(shape) : null;
}

/** torch's output-size formula for convolution and pooling (floor mode). */
export function convOutputSize(input: number, kernel: number, stride: number, padding: number, dilation: number): number {
  return Math.floor((input + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1;
}

/**
 * 2-D convolution over NCHW; the optional epilogue adds a residual and applies ReLU in the
 * same pass (inference fuses conv → BN → (+ identity) → ReLU into one call).
 */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null, params: Conv2dParams, epilogue?: ConvEpilogue): Tensor {
  expect4d(x, 'conv2d');
  if (weight.ndim !== 4) throw new ShapeError(`conv2d: expected a 4-D (O, C/groups, kh, kw) weight, got shape ${describe(weight)}`);
  const [batch, channels, height, width] = x.shape;
  const [outChannels, groupChannels, kh, kw] = weight.shape;
  const { groups } = params;
  checkWindowArgs('conv2d', [kh, kw], params.stride, params.padding, params.dilation);
  if (!Number.isSafeInteger(groups) || groups < 1) throw new RangeError(`conv2d: groups must be a positive integer, got ${groups}`);
  if (outChannels === 0 || groupChannels === 0 || outChannels % groups !== 0) {
    throw new ShapeError(`conv2d: weight ${describe(weight)} does not split into ${groups} groups of output and input channels`);
  }
  if (channels !== groupChannels * groups) {
    throw new ShapeError(
      `conv2d: given groups=${groups}, weight of size ${describe(weight)}, expected input ${describe(x)} ` +
        `to have ${groupChannels * groups} channels, but got ${channels} channels instead`,
    );
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outChannels)) {
    throw new ShapeError(`conv2d: bias of shape ${describe(bias)} does not match ${outChannels} output channels`);
  }
  const outH = convOutputSize(height, kh, params.stride[0], params.padding[0], params.dilation[0]);
  const outW = convOutputSize(width, kw, params.stride[1], params.padding[1], params.dilation[1]);
  if (outH < 1 || outW < 1) {
    throw new ShapeError(
      `conv2d: input of spatial size ${height}×${width} is too small for kernel ${kh}×${kw} ` +
        `(dilation ${params.dilation.join('×')}, padding ${params.padding.join('×')}): output would be ${outH}×${outW}`,
    );
  }
  const outShape = [batch, outChannels, outH, outW];
  if (epilogue?.residual && !shapesEqual(epilogue.residual.shape, outShape)) {
    throw new ShapeError(`conv2d: residual ${describe(epilogue.residual)} does not match the output ${shapeToString(outShape)}`);
  }
  if (epilogue && needsGraph(x, weight, bias, epilogue.residual)) {
    throw new Error('conv2d: a fused epilogue (scale, residual, relu) is for inference; run the ops one by one, or in noGrad, when gradients are needed');
  }
  const output = emptyOutput(x, outShape) ?? getBackend().conv2d(x, weight, bias, params, outH, outW, epilogue);
  recordOp({ kind: 'conv2d', x, weight, bias, params, epilogue, output });
  // y = conv(x, W) + b: dx = conv_transpose(dy, W), dW = correlate(x, dy), db = Σ_{n,h,w} dy.
  return record('ConvolutionBackward0', [x, weight, bias], output, { x, weight }, (dy, saved, needs) => {
    const kernels = backwardKernels();
    return [
      needs[0] ? kernels.conv2dBackwardInput(dy, saved.weight, params, height, width) : null,
      needs[1] ? kernels.conv2dBackwardWeight(saved.x, dy, params, kh, kw) : null,
      needs[2] ? new Tensor(kernels.channelSums(dy), [outChannels]) : null,
    ];
  });
}

/**
 * Tells the backend that `t` will never be read again, so it may free t's memory now (see
 * Backend.release). Only for intermediates no caller, hook or user can hold (the inference
 * plan's, by liveness).
 */
export function release(t: Tensor): void {
  getBackend().release?.(t);
}

/**
 * Batch normalisation over (N, H, W) per channel (Ioffe & Szegedy 2015).
 * Eval mode normalises with the running statistics. Train mode uses the batch mean and
 * biased variance, and updates running_mean/running_var in place with momentum and the
 * unbiased variance, exactly as torch does.
 */
export function batchNorm2d(x: Tensor, args: BatchNormArgs): Tensor {
  expect4d(x, 'batch_norm');
  const channels = x.shape[1];
  for (const [name, t] of [['weight', args.weight], ['bias', args.bias], ['running_mean', args.runningMean], ['running_var', args.runningVar]] as const) {
    if (t && (t.ndim !== 1 || t.shape[0] !== channels)) {
      throw new ShapeError(`batch_norm: ${name} of shape ${describe(t)} does not match ${channels} channels of input ${describe(x)}`);
    }
  }
  // No values (batch 0): nothing to normalise, and torch leaves the running statistics alone.
  const empty = emptyOutput(x, x.shape);
  if (empty) return recordOp({ kind: 'batchNorm2d', x, args, output: empty });
  const backend = getBackend();
  let mean: Float64Array;
  let variance: Float64Array;
  const useBatchStats = args.training || !args.runningMean || !args.runningVar;
  if (useBatchStats) {
    const count = x.size / channels;
    if (args.training && count <= 1) {
      throw new ShapeError(`batch_norm: expected more than 1 value per channel when training, got input of size ${describe(x)}`);
    }
    const moments = backend.channelMoments(x);
    mean = moments.mean;
    variance = moments.variance;
    if (args.training && args.runningMean && args.runningVar) {
      const rm = args.runningMean.f32;
      const rv = args.runningVar.f32;
      const m = args.momentum;
      const unbiased = count / (count - 1);
      for (let c = 0; c < channels; c++) {
        rm[c] = (1 - m) * rm[c] + m * moments.mean[c];
        rv[c] = (1 - m) * rv[c] + m * moments.variance[c] * unbiased;
      }
      args.runningMean.bumpVersion();
      args.runningVar.bumpVersion();
    }
  } else {
    mean = Float64Array.from(args.runningMean!.f32);
    variance = Float64Array.from(args.runningVar!.f32);
  }
  const scale = new Float32Array(channels);
  const shift = new Float32Array(channels);
  const invStd = new Float64Array(channels);
  const w = args.weight?.f32;
  const b = args.bias?.f32;
  for (let c = 0; c < channels; c++) {
    invStd[c] = 1 / Math.sqrt(variance[c] + args.eps);
    scale[c] = (w ? w[c] : 1) * invStd[c];
    shift[c] = (b ? b[c] : 0) - mean[c] * scale[c];
  }
  const output = backend.channelAffine(x, scale, shift);
  recordOp({ kind: 'batchNorm2d', x, args, output });
  const weight = args.weight;
  const saved: { x: Tensor; weight?: Tensor } = weight ? { x, weight } : { x };
  if (useBatchStats) {
    // y = γ·x̂ + β with x̂ = (x − mean)·invStd of this batch, so the statistics depend on x:
    // the kernel's dx carries the terms through mean and variance; dγ = Σ dy·x̂, dβ = Σ dy.
    return record('NativeBatchNormBackward0', [x, weight, args.bias], output, saved, (dy, { x, weight }, needs) => {
      const g = backwardKernels().batchNormBackward(x, dy, mean, invStd, weight?.f32 ?? null);
      return [needs[0] ? g.dx : null, needs[1] ? new Tensor(g.dGamma, [channels]) : null, needs[2] ? new Tensor(g.dBeta, [channels]) : null];
    });
  }
  // Eval mode (a frozen backbone): the running statistics are constants, so y is an affine
  // map of x per channel: dx = dy·γ·invStd; dγ = Σ dy·x̂ and dβ = Σ dy as in train mode (the
  // train-mode kernel computes those two alike; its dx is not this one).
  return record('NativeBatchNormBackward0', [x, weight, args.bias], output, saved, (dy, { x, weight }, needs) => {
    const dx = needs[0] ? getBackend().channelAffine(dy, scale, new Float32Array(channels)) : null;
    if (!needs[1] && !needs[2]) return [dx, null, null];
    const g = backwardKernels().batchNormBackward(x, dy, mean, invStd, weight?.f32 ?? null);
    return [dx, needs[1] ? new Tensor(g.dGamma, [channels]) : null, needs[2] ? new Tensor(g.dBeta, [channels]) : null];
  });
}

export function relu(x: Tensor): Tensor {
  const output = recordOp({ kind: 'relu', x, output: emptyOutput(x, x.shape) ?? getBackend().relu(x) });
  // y = max(x, 0): dx = dy where y > 0 (torch's convention: 0 at x = 0), read from the output.
  return record('ReluBackward0', [x], output, { result: output }, (dy, { result }) => [backwardKernels().reluBackward(result, dy)]);
}

/** The residual add: elementwise a + b of equal shapes. */
export function add(a: Tensor, b: Tensor): Tensor {
  if (!shapesEqual(a.shape, b.shape)) {
    throw new ShapeError(`add: shapes ${describe(a)} and ${describe(b)} differ`);
  }
  const output = recordOp({ kind: 'add', a, b, output: emptyOutput(a, a.shape) ?? getBackend().add(a, b) });
  // y = a + b: both inputs receive dy.
  return record('AddBackward0', [a, b], output, {}, (dy) => [dy, dy]);
}

export function maxPool2d(x: Tensor, params: Pool2dParams): Tensor {
  expect4d(x, 'max_pool2d');
  const [batch, channels, height, width] = x.shape;
  const [kh, kw] = params.kernel;
  checkWindowArgs('max_pool2d', params.kernel, params.stride, params.padding, params.dilation);
  if (params.padding[0] * 2 > kh || params.padding[1] * 2 > kw) {
    throw new RangeError(`max_pool2d: padding ${params.padding.join('×')} should be at most half of kernel ${kh}×${kw}`);
  }
  const outH = convOutputSize(height, kh, params.stride[0], params.padding[0], params.dilation[0]);
  const outW = convOutputSize(width, kw, params.stride[1], params.padding[1], params.dilation[1]);
  if (outH < 1 || outW < 1) {
    throw new ShapeError(`max_pool2d: given input size ${channels}×${height}×${width}, the output size ${channels}×${outH}×${outW} is too small`);
  }
  const output = emptyOutput(x, [batch, channels, outH, outW]) ?? getBackend().maxPool2d(x, params, outH, outW);
  recordOp({ kind: 'maxPool2d', x, params, output });
  // Each dy goes to the (first) maximum of its window, found again in the saved input.
  return record('MaxPool2DWithIndicesBackward0', [x], output, { x }, (dy, saved) => [backwardKernels().maxPool2dBackward(saved.x, dy, params)]);
}

export function adaptiveAvgPool2d(x: Tensor, outputSize: Pair): Tensor {
  expect4d(x, 'adaptive_avg_pool2d');
  const [outH, outW] = outputSize;
  if (x.shape[2] < 1 || x.shape[3] < 1) throw new ShapeError(`adaptive_avg_pool2d: empty input ${describe(x)}`);
  if (!isPair(outputSize, (v) => v >= 1)) throw new RangeError(`adaptive_avg_pool2d: output size must be positive integers, got ${describePair(outputSize)}`);
  const output = emptyOutput(x, [x.shape[0], x.shape[1], outH, outW]) ?? getBackend().adaptiveAvgPool2d(x, outH, outW);
  recordOp({ kind: 'adaptiveAvgPool2d', x, outputSize, output });
  // Each dy spreads evenly over the window it averaged.
  const [height, width] = [x.shape[2], x.shape[3]];
  return record('AdaptiveAvgPool2DBackward0', [x], output, {}, (dy) => [backwardKernels().adaptiveAvgPool2dBackward(dy, height, width)]);
}

/**
 * torch.flatten(x, startDim): collapses dimensions startDim.. into one, whose size is their
 * product (not -1: in a batch of 0 that would be anything, as torch's reshape says).
 */
export function flatten(x: Tensor, startDim = 1): Tensor {
  if (!Number.isSafeInteger(startDim) || startDim < 0 || startDim >= Math.max(x.ndim, 1)) {
    throw new RangeError(`flatten: start dimension ${startDim} is out of range for shape ${describe(x)}`);
  }
  const output = recordOp({ kind: 'flatten', x, startDim, output: x.reshape([...x.shape.slice(0, startDim), numel(x.shape.slice(startDim))]) });
  return record('ViewBackward0', [x], output, {}, (dy) => [dy.reshape(x.shape)]);
}

/** x.reshape(shape) recorded by autograd (Tensor.reshape is the plain view): the same elements in another shape. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const output = x.reshape(shape);
  return record('ViewBackward0', [x], output, {}, (dy) => [dy.reshape(x.shape)]);
}

export function linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  if (x.ndim !== 2) throw new ShapeError(`linear: expected a 2-D (N, features) input, got shape ${describe(x)}`);
  if (weight.ndim !== 2) throw new ShapeError(`linear: expected a 2-D (out, in) weight, got shape ${describe(weight)}`);
  const [outFeatures, inFeatures] = weight.shape;
  if (x.shape[1] !== inFeatures) {
    throw new ShapeError(`linear: input ${describe(x)} has ${x.shape[1]} features but weight ${describe(weight)} expects ${inFeatures}`);
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outFeatures)) throw new ShapeError(`linear: bias ${describe(bias)} does not match weight ${describe(weight)}`);
  const output = recordOp({ kind: 'linear', x, weight, bias, output: emptyOutput(x, [x.shape[0], outFeatures]) ?? getBackend().linear(x, weight, bias) });
  // y = x·Wᵀ + b with x (N, I), W (O, I): dx = dy·W (N, O)·(O, I), dW = dyᵀ·x (O, N)·(N, I), db = Σ_n dy.
  return record('AddmmBackward0', [x, weight, bias], output, { x, weight }, (dy, saved, needs) => {
    const kernels = backwardKernels();
    return [
      needs[0] ? kernels.matmul(dy, saved.weight, false, false) : null,
      needs[1] ? kernels.matmul(dy, saved.x, true, false) : null,
      needs[2] ? new Tensor(kernels.channelSums(dy), [outFeatures]) : null,
    ];
  });
}

// --- losses and reductions (training) ---------------------------------------------------------
// Small enough to compute here in float64 and round once; their backwards are elementwise.

function expect2d(x: Tensor, op: string): void {
  if (x.ndim !== 2) throw new ShapeError(`${op}: expected a 2-D (N, C) input, got shape ${describe(x)}`);
  if (x.dtype !== 'float32') throw new TypeError(`${op}: expected a float32 input, got ${x.dtype}`);
}

/** log(softmax(x)) over dimension 1 of x (N, C), as torch.log_softmax(x, 1): x − max − log Σ exp(x − max) per row. */
export function logSoftmax(x: Tensor, dim = 1): Tensor {
  expect2d(x, 'log_softmax');
  if (dim !== 1 && dim !== -1) throw new RangeError(`log_softmax: only dimension 1 (classes) of an (N, C) input is supported, got ${dim}`);
  const [rows, classes] = x.shape;
  const src = x.f32;
  const out = new Float32Array(src.length);
  for (let n = 0; n < rows; n++) {
    const row = n * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, src[row + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(src[row + c] - max);
    const logSum = max + Math.log(sum);
    for (let c = 0; c < classes; c++) out[row + c] = src[row + c] - logSum;
  }
  const output = new Tensor(out, x.shape);
  // y = x − logΣexp(x) per row: dx = dy − softmax(x)·Σ_c dy, softmax read back as exp(y).
  return record('LogSoftmaxBackward0', [x], output, { result: output }, (dy, { result }) => {
    const y = result.f32;
    const g = dy.f32;
    const dx = new Float32Array(y.length);
    for (let n = 0; n < rows; n++) {
      const row = n * classes;
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += g[row + c];
      for (let c = 0; c < classes; c++) dx[row + c] = g[row + c] - Math.exp(y[row + c]) * sum;
    }
    return [new Tensor(dx, x.shape)];
  });
}

export type Reduction = 'mean' | 'sum' | 'none';

export interface NllLossOptions {
  /** 'mean' (torch's default) over the batch, 'sum', or 'none' for one loss per sample (N). */
  reduction?: Reduction;
  /**
   * ε in [0, 1]: the target becomes (1 − ε)·onehot + ε/C (Szegedy et al. 2016, §7), so the loss
   * per sample is (1 − ε)·(−logp[t]) + ε·mean_c(−logp[c]), as torch's label_smoothing.
   */
  labelSmoothing?: number;
  /**
   * A weight per class (C, float32), as torch's `weight`: sample n's loss is scaled by
   * weight[target[n]] (the smoothing term by each class's weight), and 'mean' divides by the sum
   * of the targets' weights instead of the count. Not differentiated.
   */
  weight?: Tensor | null;
  /**
   * Samples whose target is this index add nothing to the loss nor to the gradient, and 'mean'
   * does not count them (torch's ignore_index, default −100). Every sample ignored: 'mean' is
   * NaN (0/0), as in torch.
   */
  ignoreIndex?: number;
}

/**
 * The class indices of an int64 target (N) for an (N, C) input, checked as torch checks them;
 * ignored samples (target = ignoreIndex, which may lie outside [0, C)) get −1.
 */
function classIndices(target: Tensor, rows: number, classes: number, op: string, ignoreIndex: number): Int32Array {
  if (target.dtype !== 'int64') throw new TypeError(`${op}: expected an int64 target of class indices (Tensor.int64), got ${target.dtype}`);
  if (target.ndim !== 1 || target.shape[0] !== rows) {
    throw new ShapeError(`${op}: expected a target of shape [${rows}] for input of ${rows} rows, got ${describe(target)}`);
  }
  const indices = new Int32Array(rows);
  const ignored = BigInt(ignoreIndex);
  (target.data as BigInt64Array).forEach((v, n) => {
    if (v === ignored) {
      indices[n] = -1;
      return;
    }
    if (v < 0n || v >= BigInt(classes)) throw new RangeError(`${op}: target ${v} is out of bounds for ${classes} classes`);
    indices[n] = Number(v);
  });
  return indices;
}

/** The class weights of nllLoss's options, checked: (C) float32, or null. */
function classWeights(weight: Tensor | null | undefined, classes: number, op: string): Float32Array | null {
  if (weight === undefined || weight === null) return null;
  if (weight.dtype !== 'float32' || weight.ndim !== 1 || weight.shape[0] !== classes) {
    throw new ShapeError(`${op}: expected a float32 weight of shape [${classes}] (one per class), got ${describe(weight)}`);
  }
  return weight.f32;
}

/**
 * The negative log-likelihood of class indices `target` (N, int64) under log-probabilities
 * `logProbs` (N, C), as torch.nn.functional.nll_loss (with cross_entropy's label smoothing,
 * class weights and ignored index, combined as torch 1.13's cross_entropy combines them).
 */
export function nllLoss(logProbs: Tensor, target: Tensor, options: NllLossOptions = {}): Tensor {
  expect2d(logProbs, 'nll_loss');
  const reduction = options.reduction ?? 'mean';
  const smoothing = options.labelSmoothing ?? 0;
  const ignoreIndex = options.ignoreIndex ?? -100;
  if (!['mean', 'sum', 'none'].includes(reduction)) throw new RangeError(`nll_loss: reduction must be 'mean', 'sum' or 'none', got '${reduction}'`);
  if (!(smoothing >= 0 && smoothing <= 1)) throw new RangeError(`nll_loss: label smoothing must be in [0, 1], got ${smoothing}`);
  if (!Number.isSafeInteger(ignoreIndex)) throw new RangeError(`nll_loss: ignoreIndex must be an integer, got ${ignoreIndex}`);
  const [rows, classes] = logProbs.shape;
  const labels = classIndices(target, rows, classes, 'nll_loss', ignoreIndex);
  const weight = classWeights(options.weight, classes, 'nll_loss');
  const w = (c: number): number => (weight ? weight[c] : 1);
  const logp = logProbs.f32;
  // loss_n = (1 − ε)·(−w[t_n]·logp[n, t_n]) + (ε/C)·(−Σ_c w[c]·logp[n, c]), 0 for ignored samples;
  // 'mean' divides the sum by Σ_n w[t_n] over the samples not ignored.
  const perSample = new Float64Array(rows);
  let denominator = 0;
  for (let n = 0; n < rows; n++) {
    if (labels[n] < 0) continue;
    const row = n * classes;
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += w(c) * logp[row + c];
    perSample[n] = -(1 - smoothing) * w(labels[n]) * logp[row + labels[n]] - (smoothing / classes) * sum;
    denominator += w(labels[n]);
  }
  let output: Tensor;
  if (reduction === 'none') output = new Tensor(Float32Array.from(perSample), [rows]);
  else {
    const total = perSample.reduce((a, b) => a + b, 0);
    output = new Tensor(Float32Array.of(reduction === 'mean' ? total / denominator : total), []);
  }
  // loss_n = −Σ_c q[n, c]·logp[n, c] with q = (1 − ε)·w[t_n]·onehot(t_n) + (ε/C)·w:
  // dlogp[n, c] = −q[n, c]·dloss_n, nothing for ignored samples.
  return record('NllLossBackward0', [logProbs], output, {}, (dy) => {
    const g = dy.f32;
    const dx = new Float32Array(rows * classes);
    for (let n = 0; n < rows; n++) {
      if (labels[n] < 0) continue;
      const scale = reduction === 'none' ? g[n] : reduction === 'mean' ? g[0] / denominator : g[0];
      const row = n * classes;
      for (let c = 0; c < classes; c++) dx[row + c] = -(smoothing / classes) * w(c) * scale;
      dx[row + labels[n]] -= (1 - smoothing) * w(labels[n]) * scale;
    }
    return [new Tensor(dx, logProbs.shape)];
  });
}

/**
 * torch.nn.functional.cross_entropy for logits (N, C) and class indices `target` (N, int64):
 * nllLoss(logSoftmax(logits)), with label smoothing, class weights, an ignored index and a
 * reduction.
 */
export function crossEntropy(logits: Tensor, target: Tensor, options: NllLossOptions = {}): Tensor {
  return nllLoss(logSoftmax(logits, 1), target, options);
}

/** The sum of every element, a 0-d tensor. */
export function sum(x: Tensor): Tensor {
  let total = 0;
  for (const v of x.f32) total += v;
  const output = new Tensor(Float32Array.of(total), []);
  // Every element receives dy.
  return record('SumBackward0', [x], output, {}, (dy) => [Tensor.full(x.shape, dy.f32[0])]);
}

/** The mean of every element, a 0-d tensor. */
export function mean(x: Tensor): Tensor {
  let total = 0;
  for (const v of x.f32) total += v;
  const output = new Tensor(Float32Array.of(total / x.size), []);
  // Every element receives dy / numel.
  return record('MeanBackward0', [x], output, {}, (dy) => [Tensor.full(x.shape, dy.f32[0] / x.size)]);
}

/**
 * The option-A shortcut of He et al. 2015 (§4.2, CIFAR-10): the identity where the block
 * changes shape, as x[:, :, ::stride, ::stride] with `before` zero channels in front and `after`
 * behind (the common PyTorch implementation pads planes/4 on each side). No parameters.
 * x is (N, C, H, W); the output is (N, before + C + after, ceil(H / stride), ceil(W / stride)).
 */
export function subsamplePadChannels(x: Tensor, stride: number, before: number, after: number): Tensor {
  expect4d(x, 'subsample_pad_channels');
  if (!Number.isSafeInteger(stride) || stride < 1) throw new RangeError(`subsample_pad_channels: stride must be a positive integer, got ${stride}`);
  for (const [name, v] of [['before', before], ['after', after]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`subsample_pad_channels: ${name} must be a non-negative integer, got ${v}`);
  }
  const [batch, channels, height, width] = x.shape;
  const outShape = [batch, before + channels + after, Math.ceil(height / stride), Math.ceil(width / stride)];
  const output = x.isMeta ? Tensor.meta(outShape) : new Tensor(subsamplePadChannelsForward(x.f32, x.shape, stride, before, after), outShape);
  recordOp({ kind: 'subsamplePadChannels', x, stride, before, after, output });
  // Saves nothing: the gradient needs only the shapes.
  return record('SubsamplePadChannelsBackward', [x], output, {}, (dy) => [subsamplePadChannelsBackward(dy, x.shape, stride, before)]);
}

/** The forward of subsamplePadChannels on plain arrays: x (N, C, H, W) → (N, before + C + after, ⌈H/s⌉, ⌈W/s⌉). */
function subsamplePadChannelsForward(x: Float32Array, shape: Shape, stride: number, before: number, after: number): Float32Array {
  const [batch, channels, height, width] = shape;
  const outH = Math.ceil(height / stride);
  const outW = Math.ceil(width / stride);
  const outChannels = before + channels + after;
  const out = new Float32Array(batch * outChannels * outH * outW); // padded channels stay 0
  for (let n = 0; n < batch; n++) {
    for (let c = 0; c < channels; c++) {
      const src = (n * channels + c) * height * width;
      const dst = (n * outChannels + before + c) * outH * outW;
      for (let y = 0; y < outH; y++) {
        const row = src + y * stride * width;
        for (let i = 0; i < outW; i++) out[dst + y * outW + i] = x[row + i * stride];
      }
    }
  }
  return out;
}

/**
 * The gradient of subsamplePadChannels with respect to x, given the gradient of its output
 * (N, before + C + after, ⌈H/s⌉, ⌈W/s⌉): each kept pixel gets its output's gradient; pixels the
 * stride skipped, and the padded channels' gradients, go nowhere. Returns (N, C, H, W) = inputShape.
 */
export function subsamplePadChannelsBackward(gradOutput: Tensor, inputShape: Shape, stride: number, before: number): Tensor {
  const [batch, channels, height, width] = inputShape;
  const [, outChannels, outH, outW] = gradOutput.shape;
  const g = gradOutput.f32;
  const grad = new Float32Array(numel(inputShape));
  for (let n = 0; n < batch; n++) {
    for (let c = 0; c < channels; c++) {
      const dst = (n * channels + c) * height * width;
      const src = (n * outChannels + before + c) * outH * outW;
      for (let y = 0; y < outH; y++) {
        const row = dst + y * stride * width;
        for (let i = 0; i < outW; i++) grad[row + i * stride] = g[src + y * outW + i];
      }
    }
  }
  return new Tensor(grad, inputShape);
}
