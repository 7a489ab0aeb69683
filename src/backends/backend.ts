// The one interface every compute backend implements (reference TypeScript today; native
// and WebAssembly next), and the registry that picks which one the ops layer calls.
// Backends receive validated, contiguous float32 NCHW tensors: checking shapes and
// arguments is the ops layer's job, so each backend is only arithmetic.

import { platform } from '#platform';
import type { Tensor } from '../core/tensor.js';

export interface Conv2dParams {
  stride: readonly [number, number];
  padding: readonly [number, number];
  dilation: readonly [number, number];
  groups: number;
}

export interface Pool2dParams {
  kernel: readonly [number, number];
  stride: readonly [number, number];
  padding: readonly [number, number];
  dilation: readonly [number, number];
}

/**
 * What a convolution may do to its output before storing it, so inference needs no extra
 * passes over memory: y = relu?(conv(x) + bias + residual?).
 */
export interface ConvEpilogue {
  /**
   * Output channel o of the convolution multiplied by scale[o] before the bias: BatchNorm
   * folded into the convolution. Every backend computes it as the convolution with the folded
   * weight w·scale[o] (rounded to float32, see foldWeightScale); the fast ones fold it once,
   * into their packed copy of the weight, so no folded copy of the model is ever kept.
   */
  scale?: Float64Array | null;
  /** Added elementwise after the bias; the shape of the output. */
  residual?: Tensor | null;
  relu?: boolean;
}

/**
 * weight (O, ...) with output channel o multiplied by scale[o], in float32; the weight itself
 * when there is no scale.
 */
export function foldWeightScale(weight: Float32Array, scale: Float64Array | null | undefined): Float32Array {
  if (!scale) return weight;
  const perChannel = weight.length / scale.length;
  const out = new Float32Array(weight.length);
  for (let o = 0; o < scale.length; o++) {
    const s = scale[o];
    for (let i = o * perChannel; i < (o + 1) * perChannel; i++) out[i] = weight[i] * s;
  }
  return out;
}

/** Per-channel mean and biased variance over (N, H, W) of an NCHW tensor. */
export interface ChannelMoments {
  mean: Float64Array;
  variance: Float64Array;
}

/** What batchNormBackward returns: the input's gradient and the affine parameters' (C). */
export interface BatchNormGradients {
  dx: Tensor;
  dGamma: Float32Array;
  dBeta: Float32Array;
}

export interface Backend {
  readonly name: string;
  /**
   * Threads the kernels run on. A backend without threads (the reference) stays at 1; a fast
   * one may clamp the request (to its pool's size), so read getThreads() for what runs.
   */
  setThreads(n: number): void;
  getThreads(): number;
  /**
   * x (N, C, H, W), weight (O, C/groups, kh, kw), bias (O) or null → (N, O, OH, OW), with the
   * epilogue applied. A backend may cache work derived from `weight` (packing) keyed by the
   * tensor object, its version (Tensor.version) and the scale array's identity.
   */
  conv2d(x: Tensor, weight: Tensor, bias: Tensor | null, params: Conv2dParams, outH: number, outW: number, epilogue?: ConvEpilogue): Tensor;
  /** y[n,c,h,w] = x[n,c,h,w] * scale[c] + shift[c]; batch norm in both modes reduces to this. */
  channelAffine(x: Tensor, scale: Float32Array, shift: Float32Array): Tensor;
  channelMoments(x: Tensor): ChannelMoments;
  relu(x: Tensor): Tensor;
  add(a: Tensor, b: Tensor): Tensor;
  /** Max over each window; padded positions never win. */
  maxPool2d(x: Tensor, params: Pool2dParams, outH: number, outW: number): Tensor;
  /** torchvision/torch adaptive pooling windows: [floor(i*H/out), ceil((i+1)*H/out)). */
  adaptiveAvgPool2d(x: Tensor, outH: number, outW: number): Tensor;
  /** x (N, I), weight (O, I), bias (O) or null → (N, O). */
  linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor;
  // Backward kernels (training). Each returns a new tensor or array it owns; none
  // accumulates into an existing gradient (autograd sums). Optional: the ops layer runs the
  // reference backend's kernel for a backend that lacks one, so every backend trains and the
  // fast ones gain kernels one at a time.

  /** Gradient of conv2d w.r.t. its input: dy (N, O, OH, OW), weight (O, C/groups, kh, kw) → dx (N, C, inH, inW). */
  conv2dBackwardInput?(dy: Tensor, weight: Tensor, params: Conv2dParams, inH: number, inW: number): Tensor;
  /** Gradient of conv2d w.r.t. its weight: x (N, C, H, W), dy (N, O, OH, OW) → dW (O, C/groups, kh, kw). */
  conv2dBackwardWeight?(x: Tensor, dy: Tensor, params: Conv2dParams, kh: number, kw: number): Tensor;
  /** Σ over n, h, w of dy (N, C, H, W) (or over n of dy (N, C)) → (C): bias gradients and BatchNorm's dβ. */
  channelSums?(dy: Tensor): Float32Array;
  /**
   * Train-mode batch norm backward. x (N, C, H, W) the forward's input, dy its output's
   * gradient, mean and invStd (C) the batch statistics the forward normalised with
   * (invStd = 1/sqrt(var + eps)), gamma (C) or null (affine=false) →
   * dx = gamma·invStd·(dy − mean(dy) − x̂·mean(dy·x̂)), dGamma = Σ dy·x̂, dBeta = Σ dy, with
   * x̂ = (x − mean)·invStd and means over (N, H, W).
   */
  batchNormBackward?(x: Tensor, dy: Tensor, mean: Float64Array, invStd: Float64Array, gamma: Float32Array | null): BatchNormGradients;
  /** Gradient of max pooling: each dy goes to the first maximum of its window in row-major window order (torch's argmax); x (N, C, H, W), dy (N, C, OH, OW) → dx like x. */
  maxPool2dBackward?(x: Tensor, dy: Tensor, params: Pool2dParams): Tensor;
  /** Gradient of adaptive average pooling: dy (N, C, OH, OW) → dx (N, C, inH, inW), each dy spread evenly over its window. */
  adaptiveAvgPool2dBackward?(dy: Tensor, inH: number, inW: number): Tensor;
  /** Gradient of relu from its output: dx = dy where y > 0, else 0. */
  reluBackward?(y: Tensor, dy: Tensor): Tensor;
  /**
   * c = op(a) · op(b) for 2-D tensors, op transposing when asked: (M, K)·(K, N) → (M, N).
   * Linear's backward: dx = dy · W (N, O)·(O, I); dW = dyᵀ · x (O, N)·(N, I).
   */
  matmul?(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor;

  /**
   * Optional: `t`, an output of this backend, will never be read again (an activation of an
   * inference plan after its last use, src/plan). A backend may hand its memory out again for
   * a later output (native recycles the array; wasm frees the block now instead of when the
   * garbage collector finds it); anything else is ignored.
   */
  release?(t: Tensor): void;
}

const registry = new Map<string, () => Backend>();
/** Each backend is created once (a fast one owns threads and memory) and then reused. */
const instances = new Map<string, Backend>();
let current: Backend | null = null;

function instance(name: string): Backend {
  let backend = instances.get(name);
  if (!backend) {
    const create = registry.get(name);
    if (!create) throw new Error(`unknown backend '${name}' (available: auto, ${listBackends().join(', ')})`);
    backend = create();
    instances.set(name, backend);
  }
  return backend;
}

export function registerBackend(name: string, create: () => Backend): void {
  registry.set(name, create);
  instances.delete(name);
}

export function listBackends(): string[] {
  return [...registry.keys()];
}

/** The order `auto` tries: the native addon where it loads, else WebAssembly, else the reference. */
export const AUTO_ORDER = ['native', 'wasm', 'ref'] as const;

/**
 * A setting the user gave a backend (RESNET_NATIVE_ISA, say) that it cannot honour. `auto`
 * does not pass over a backend that throws this for the next one: what was asked for
 * explicitly fails loudly.
 */
export class BackendSettingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendSettingError';
  }
}

let warnedAutoReference = false;

/**
 * The name 'auto' resolves to: the first backend of AUTO_ORDER that is registered and starts.
 * Landing on the reference backend (tens of times slower) because a faster one failed to start
 * is said once, with the reason.
 */
function createAuto(): Backend {
  const failures: string[] = [];
  for (const name of AUTO_ORDER) {
    if (!registry.has(name)) continue;
    try {
      const backend = instance(name);
      if (name === 'ref' && failures.length && !warnedAutoReference) {
        warnedAutoReference = true;
        platform.warn(`resnet-ts: backend 'auto' runs on the slow reference backend, since ${failures.join('; ')}`);
      }
      return backend;
    } catch (error) {
      if (error instanceof BackendSettingError) throw error;
      failures.push(`${name}: ${(error as Error).message}`);
    }
  }
  throw new Error(`no backend could start (${failures.join('; ')})`);
}

/**
 * Selects the backend the ops layer uses from now on: a registered name, or 'auto'.
 * Without a call, the environment variable RESNET_BACKEND decides, else 'auto'.
 */
export function setBackend(name: string): Backend {
  if (name === 'auto') {
    current = createAuto();
    return current;
  }
  current = instance(name);
  return current;
}

/** Runs `work` with another backend selected, restoring the previous one afterwards. */
export function withBackend<T>(name: string, work: () => T): T {
  const previous = getBackend();
  setBackend(name);
  try {
    return work();
  } finally {
    current = previous;
  }
}

function environmentBackend(): string | undefined {
  return platform.env('RESNET_BACKEND') || undefined;
}

export function getBackend(): Backend {
  if (!current) current = setBackend(environmentBackend() ?? 'auto');
  return current;
}
