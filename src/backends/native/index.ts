// The native backend: the kernels of csrc/kernels.c in a Node addon (build/Release/
// resnet_native.node, built at `npm install` by scripts/install-native.js), run by the
// addon's own pthread pool. Inputs and outputs are passed as the tensors' own Float32Arrays
// (outputs are allocated here, uninitialised, and written by C: no copies). Convolution
// weights are packed once into the micro-kernel's layout and cached per weight tensor.

import { platform } from '#platform';
import { Tensor } from '../../core/tensor.js';
import { BackendSettingError, type Backend, type BatchNormGradients, type Conv2dParams, type ConvEpilogue, type Pool2dParams, type ChannelMoments } from '../backend.js';
import { createReferenceBackend } from '../ref/kernels.js';
import { convShapeFields, convShapeOf, matmulFlags, packingKey } from '../kernel-abi.js';
import { FlippedWeights, inputGradientConv } from '../input-gradient.js';
import { PackedWeights } from '../packed-weights.js';
import { Slicing } from '../slicing.js';

/** One build of the kernels inside the addon (see csrc/native/addon.c for the argument lists). */
interface NativeKernels {
  isa(): string;
  conv2dPacking(geometry: Int32Array): number;
  conv2dPackedFloats(geometry: Int32Array): number;
  /** Packs weight for the micro-kernel, output channel o times scale[o] (BatchNorm folded in), on the addon's threads. */
  conv2dPack(geometry: Int32Array, weight: Float32Array, scale: Float64Array | null, packed: Float32Array, slices: number): void;
  conv2d(
    geometry: Int32Array, x: Float32Array, packed: Float32Array, bias: Float32Array | null,
    residual: Float32Array | null, relu: boolean, y: Float32Array, threads: number,
  ): void;
  maxPool2d(x: Float32Array, dims: Int32Array, y: Float32Array, slices: number): void;
  adaptiveAvgPool2d(x: Float32Array, dims: Int32Array, y: Float32Array, slices: number): void;
  linear(x: Float32Array, weight: Float32Array, bias: Float32Array | null, batch: number, inFeatures: number, outFeatures: number, y: Float32Array, slices: number): void;
  channelAffine(x: Float32Array, scale: Float32Array, shift: Float32Array, batch: number, channels: number, plane: number, y: Float32Array, slices: number): void;
  add(a: Float32Array, b: Float32Array, relu: boolean, y: Float32Array, slices: number): void;
  relu(x: Float32Array, y: Float32Array, slices: number): void;
  conv2dBackwardInput(geometry: Int32Array, dy: Float32Array, weight: Float32Array, dx: Float32Array, slices: number): void;
  conv2dBackwardWeight(geometry: Int32Array, x: Float32Array, dy: Float32Array, dw: Float32Array, slices: number): void;
  channelSums(dy: Float32Array, batch: number, channels: number, plane: number, sums: Float32Array, slices: number): void;
  channelMoments(x: Float32Array, batch: number, channels: number, plane: number, mean: Float64Array, variance: Float64Array, slices: number): void;
  batchNormBackward(
    x: Float32Array, dy: Float32Array, mean: Float64Array, invStd: Float64Array, gamma: Float32Array | null,
    batch: number, channels: number, plane: number, dx: Float32Array, dGamma: Float32Array, dBeta: Float32Array, slices: number,
  ): void;
  /** dims as maxPool2d's. */
  maxPool2dBackward(x: Float32Array, dy: Float32Array, dims: Int32Array, dx: Float32Array, slices: number): void;
  adaptiveAvgPool2dBackward(dy: Float32Array, dims: Int32Array, dx: Float32Array, slices: number): void;
  reluBackward(y: Float32Array, dy: Float32Array, dx: Float32Array, slices: number): void;
  /** c (m × n) = op(a) · op(b); flags: matmulFlags. */
  matmul(a: Float32Array, b: Float32Array, m: number, n: number, k: number, flags: number, c: Float32Array, slices: number): void;
}

interface NativeAddon {
  /** The builds this CPU can run, by ISA name ('avx512f', 'avx2-fma', 'scalar', ...). */
  variants: Record<string, NativeKernels>;
  /** The fastest of them. */
  best: string;
  setThreads(n: number): void;
  getThreads(): number;
}

export interface NativeBackendOptions {
  /** Threads of the addon's pool, shared by every native backend of this JavaScript thread; the pool starts with one per core. */
  threads?: number;
  /** Which build of the kernels to run ('avx512f', 'avx2-fma', 'scalar'); default: $RESNET_NATIVE_ISA, else the best the CPU supports. */
  isa?: string;
  /**
   * Computes a stride-1 convolution's input gradient as a convolution on the forward kernels
   * (src/backends/input-gradient.ts; default true); false runs the backward GEMM + col2im
   * kernel for every stride (tests of that kernel).
   */
  inputGradientByConvolution?: boolean;
  /** Split even the smallest call over every thread (tests of the kernels' slicing), as wasm's option; default false. */
  splitSmallOps?: boolean;
  /** Bytes of packed weights kept between calls, least recently used dropped first (as wasm's weightCacheBytes); default: no limit. */
  weightCacheBytes?: number;
}

export interface NativeBackend extends Backend {
  setThreads(n: number): void;
  getThreads(): number;
  /** The ISA of the kernels this backend runs. */
  isa(): string;
  /** The ISAs the addon offers on this CPU. */
  isas(): string[];
  /** Bytes of packed weights the backend holds (wasm's stats() says the same as weightBytes). */
  stats(): { weightBytes: number };
}

let addon: NativeAddon | null = null;
let loadError: Error | null = null;

function loadAddon(): NativeAddon {
  if (addon) return addon;
  if (!loadError) {
    try {
      addon = platform.loadNativeAddon() as NativeAddon;
      return addon;
    } catch (error) {
      loadError = error as Error;
    }
  }
  throw new Error(
    `native backend: the addon build/Release/resnet_native.node is not built or does not load ` +
      `(run \`node scripts/install-native.js\`, which needs python3, make and a C compiler): ${loadError!.message}`,
  );
}

/** Why the addon does not load on this machine (not built, or fails to load); undefined where it loads. */
export function nativeUnavailableReason(): string | undefined {
  try {
    loadAddon();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Whether the addon is built and loads on this machine. */
export function nativeAvailable(): boolean {
  return nativeUnavailableReason() === undefined;
}

/** Released outputs kept for reuse, at most this many bytes in all. */
const RECYCLE_BYTES = 64 * 2 ** 20;

/**
 * Output arrays, recycled: an output the inference plan releases (Backend.release: an activation
 * after its last use) is handed out again for the next output of its size, so a forward pass keeps
 * writing the same few, cache-warm arrays instead of fresh memory.
 */
class OutputArrays {
  readonly #mine = new WeakSet<Float32Array>();
  readonly #free = new Map<number, Float32Array[]>();
  #freeBytes = 0;

  /** A Float32Array of n elements that this backend will overwrite whole: no zero-filling. */
  take(n: number): Float32Array {
    const reused = this.#free.get(n)?.pop();
    if (reused) {
      this.#freeBytes -= reused.byteLength;
      this.#mine.add(reused);
      return reused;
    }
    const bytes = Buffer.allocUnsafeSlow(n * 4);
    const array = new Float32Array(bytes.buffer, bytes.byteOffset, n);
    this.#mine.add(array);
    return array;
  }

  /** A Float32Array of n elements, not zero-filled and never recycled (packed weights). */
  uninitialized(n: number): Float32Array {
    const bytes = Buffer.allocUnsafeSlow(n * 4);
    return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  }

  /** Takes back an array `take` handed out (anything else, or a second release, is ignored). */
  give(array: Float32Array): void {
    if (!this.#mine.has(array) || this.#freeBytes + array.byteLength > RECYCLE_BYTES) return;
    this.#mine.delete(array);
    let list = this.#free.get(array.length);
    if (!list) this.#free.set(array.length, (list = []));
    list.push(array);
    this.#freeBytes += array.byteLength;
  }
}

/** rk_conv2d_shape's fields as the addon takes them. */
function convGeometry(x: Tensor, weight: Tensor, p: Conv2dParams, outH: number, outW: number): Int32Array {
  return Int32Array.from(convShapeFields(x, weight, p, outH, outW));
}

/** RESNET_NATIVE_ISA's names (avx512 | avx2 | portable) for the builds' own ISA names. */
export const FORCED_ISA: Readonly<Record<string, readonly string[]>> = {
  avx512: ['avx512f'],
  avx2: ['avx2-fma'],
  portable: ['scalar', 'neon'],
};

/**
 * The build to run when none is asked for: RESNET_NATIVE_ISA=avx512|avx2|portable (or a
 * build's own name) where set, else the best this CPU supports. A forced ISA the CPU cannot
 * run is an error, never a silent fallback.
 */
function defaultIsa(native: NativeAddon): string {
  const forced = platform.env('RESNET_NATIVE_ISA')?.trim();
  if (!forced) return native.best;
  const isa = (FORCED_ISA[forced] ?? [forced]).find((name) => name in native.variants);
  if (!isa) {
    throw new BackendSettingError(
      `RESNET_NATIVE_ISA=${forced}: this CPU cannot run those kernels (it runs ${Object.keys(native.variants).join(', ')}; ` +
        `the choices are ${Object.keys(FORCED_ISA).join(', ')})`,
    );
  }
  return isa;
}

export function createNativeBackend(options: NativeBackendOptions = {}): NativeBackend {
  const native = loadAddon();
  const isa = options.isa ?? defaultIsa(native);
  const k = native.variants[isa];
  if (!k) throw new Error(`native backend: no '${isa}' kernels on this CPU (available: ${Object.keys(native.variants).join(', ')})`);
  if (options.threads !== undefined) native.setThreads(options.threads);
  const ref = createReferenceBackend();
  const outputs = new OutputArrays();
  const output = (n: number): Float32Array => outputs.take(n);
  // Each weight tensor's packings, by layout and geometry (packingKey), the scale folded in and
  // the weight's version (a write in place packs it again): the cache wasm uses (packed-weights.ts).
  const packs = new PackedWeights<Float32Array>(options.weightCacheBytes ?? Infinity);
  const flippedWeights = new FlippedWeights();
  const byConvolution = options.inputGradientByConvolution ?? true;
  // How many slices each call is cut into (slicing.ts, as the wasm backend cuts them).
  const slicing = new Slicing(() => native.getThreads(), options.splitSmallOps ?? false);

  function packed(weight: Tensor, geometry: Int32Array, scale: Float64Array | null): Float32Array {
    const floats = k.conv2dPackedFloats(geometry);
    // conv2dPack writes every float: no zero-filling.
    return packs.get(weight, packingKey(geometry, k.conv2dPacking(geometry)), floats * 4, scale, () => outputs.uninitialized(floats), (data) =>
      k.conv2dPack(geometry, weight.f32, scale, data, slicing.elements(weight.size)),
    );
  }

  const backend: NativeBackend = {
    name: 'native',
    setThreads: (n: number) => native.setThreads(n),
    getThreads: () => native.getThreads(),
    isa: () => k.isa(),
    isas: () => Object.keys(native.variants),
    stats: () => ({ weightBytes: packs.bytes }),

    release(t: Tensor): void {
      if (t.data instanceof Float32Array) outputs.give(t.data);
    },

    conv2d(x: Tensor, weight: Tensor, bias: Tensor | null, p: Conv2dParams, outH: number, outW: number, epilogue: ConvEpilogue = {}): Tensor {
      const geometry = convGeometry(x, weight, p, outH, outW);
      const y = output(x.shape[0] * weight.shape[0] * outH * outW);
      k.conv2d(geometry, x.f32, packed(weight, geometry, epilogue.scale ?? null), bias?.f32 ?? null, epilogue.residual?.f32 ?? null, epilogue.relu ?? false, y, slicing.conv(y.length, weight.shape));
      return new Tensor(y, [x.shape[0], weight.shape[0], outH, outW]);
    },

    channelAffine(x: Tensor, scale: Float32Array, shift: Float32Array): Tensor {
      const [batch, channels] = x.shape;
      const plane = batch * channels === 0 ? 0 : x.size / (batch * channels);
      const y = output(x.size);
      if (x.size > 0) k.channelAffine(x.f32, scale, shift, batch, channels, plane, y, slicing.elements(x.size));
      return new Tensor(y, x.shape);
    },

    // Training-mode batch statistics: float64 two-pass sums, as the reference computes them.
    channelMoments(x: Tensor): ChannelMoments {
      const [batch, channels] = x.shape;
      const mean = new Float64Array(channels);
      const variance = new Float64Array(channels);
      if (x.size > 0) k.channelMoments(x.f32, batch, channels, x.size / (batch * channels), mean, variance, slicing.elements(x.size));
      return { mean, variance };
    },

    relu(x: Tensor): Tensor {
      const y = output(x.size);
      k.relu(x.f32, y, slicing.elements(x.size));
      return new Tensor(y, x.shape);
    },

    add(a: Tensor, b: Tensor): Tensor {
      const y = output(a.size);
      k.add(a.f32, b.f32, false, y, slicing.elements(a.size));
      return new Tensor(y, a.shape);
    },

    maxPool2d(x: Tensor, p: Pool2dParams, outH: number, outW: number): Tensor {
      const [batch, channels, inH, inW] = x.shape;
      const y = output(batch * channels * outH * outW);
      if (y.length > 0) {
        const dims = Int32Array.of(
          batch, channels, inH, inW, p.kernel[0], p.kernel[1], p.stride[0], p.stride[1],
          p.padding[0], p.padding[1], p.dilation[0], p.dilation[1], outH, outW,
        );
        k.maxPool2d(x.f32, dims, y, slicing.elements(y.length * p.kernel[0] * p.kernel[1]));
      }
      return new Tensor(y, [batch, channels, outH, outW]);
    },

    adaptiveAvgPool2d(x: Tensor, outH: number, outW: number): Tensor {
      const [batch, channels, inH, inW] = x.shape;
      const y = output(batch * channels * outH * outW);
      if (y.length > 0) k.adaptiveAvgPool2d(x.f32, Int32Array.of(batch, channels, inH, inW, outH, outW), y, slicing.elements(x.size));
      return new Tensor(y, [batch, channels, outH, outW]);
    },

    linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
      const [batch, inFeatures] = x.shape;
      const outFeatures = weight.shape[0];
      const y = output(batch * outFeatures);
      if (y.length > 0) k.linear(x.f32, weight.f32, bias?.f32 ?? null, batch, inFeatures, outFeatures, y, slicing.macs(batch * inFeatures * outFeatures));
      return new Tensor(y, [batch, outFeatures]);
    },

    // Backward kernels: each output is written whole by C (no zero-filling here); empty
    // tensors never reach C, whose shape checks want positive sizes.

    conv2dBackwardInput(dy: Tensor, weight: Tensor, p: Conv2dParams, inH: number, inW: number): Tensor {
      const [batch, , outH, outW] = dy.shape;
      const xShape = [batch, weight.shape[1] * p.groups, inH, inW];
      const asConv = inputGradientConv(p, weight.shape[2], weight.shape[3]);
      if (asConv && byConvolution && batch > 0) return backend.conv2d(dy, flippedWeights.get(weight, p.groups), null, asConv, inH, inW);
      const dx = output(batch * xShape[1] * inH * inW);
      if (dx.length > 0) k.conv2dBackwardInput(Int32Array.from(convShapeOf(xShape, weight.shape, p, outH, outW)), dy.f32, weight.f32, dx, slicing.conv(dy.size, weight.shape));
      return new Tensor(dx, xShape);
    },

    conv2dBackwardWeight(x: Tensor, dy: Tensor, p: Conv2dParams, kh: number, kw: number): Tensor {
      const [, , outH, outW] = dy.shape;
      const weightShape = [dy.shape[1], x.shape[1] / p.groups, kh, kw];
      if (x.size === 0) return Tensor.zeros(weightShape);
      const dw = output(weightShape[0] * weightShape[1] * kh * kw);
      k.conv2dBackwardWeight(Int32Array.from(convShapeOf(x.shape, weightShape, p, outH, outW)), x.f32, dy.f32, dw, slicing.conv(dy.size, weightShape));
      return new Tensor(dw, weightShape);
    },

    channelSums(dy: Tensor): Float32Array {
      const [batch, channels] = dy.shape;
      const sums = new Float32Array(channels);
      if (dy.size > 0) k.channelSums(dy.f32, batch, channels, dy.size / (batch * channels), sums, slicing.elements(dy.size));
      return sums;
    },

    batchNormBackward(x: Tensor, dy: Tensor, mean: Float64Array, invStd: Float64Array, gamma: Float32Array | null): BatchNormGradients {
      const [batch, channels] = x.shape;
      const dx = output(x.size);
      const dGamma = new Float32Array(channels);
      const dBeta = new Float32Array(channels);
      if (x.size > 0) k.batchNormBackward(x.f32, dy.f32, mean, invStd, gamma, batch, channels, x.size / (batch * channels), dx, dGamma, dBeta, slicing.elements(x.size));
      return { dx: new Tensor(dx, x.shape), dGamma, dBeta };
    },

    maxPool2dBackward(x: Tensor, dy: Tensor, p: Pool2dParams): Tensor {
      const [batch, channels, inH, inW] = x.shape;
      const [, , outH, outW] = dy.shape;
      if (dy.size === 0) return Tensor.zeros(x.shape);
      const dx = output(x.size);
      const dims = Int32Array.of(
        batch, channels, inH, inW, p.kernel[0], p.kernel[1], p.stride[0], p.stride[1],
        p.padding[0], p.padding[1], p.dilation[0], p.dilation[1], outH, outW,
      );
      k.maxPool2dBackward(x.f32, dy.f32, dims, dx, slicing.elements(dy.size * p.kernel[0] * p.kernel[1]));
      return new Tensor(dx, x.shape);
    },

    adaptiveAvgPool2dBackward(dy: Tensor, inH: number, inW: number): Tensor {
      const [batch, channels, outH, outW] = dy.shape;
      const dx = output(batch * channels * inH * inW);
      if (dx.length > 0) k.adaptiveAvgPool2dBackward(dy.f32, Int32Array.of(batch, channels, inH, inW, outH, outW), dx, slicing.elements(dx.length));
      return new Tensor(dx, [batch, channels, inH, inW]);
    },

    reluBackward(y: Tensor, dy: Tensor): Tensor {
      const dx = output(y.size);
      k.reluBackward(y.f32, dy.f32, dx, slicing.elements(y.size));
      return new Tensor(dx, y.shape);
    },

    matmul(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor {
      const [m, depth] = transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
      const n = transB ? b.shape[0] : b.shape[1];
      const c = output(m * n);
      if (c.length > 0) k.matmul(a.f32, b.f32, m, n, depth, matmulFlags(transA, transB), c, slicing.macs(m * n * depth));
      return new Tensor(c, [m, n]);
    },
  };
  return backend;
}

let shared: NativeBackend | null = null;

/** The backend `setBackend('native')` selects: one instance, so its packed weights survive switching backends. */
export function defaultNativeBackend(): NativeBackend {
  shared ??= createNativeBackend();
  return shared;
}
