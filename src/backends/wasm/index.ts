// The WebAssembly backend: csrc/kernels.c compiled to wasm (scripts/build-wasm.sh), run on
// one shared memory by a pool of threads (threads.ts), behind the synchronous Backend
// interface so Module.forward works unchanged.
//
// Memory. Tensors this backend returns live in the wasm memory: their data is a Float32Array
// view of it, so the next op reads its input where the last one wrote it, with no copy in
// either direction (copying outputs out into fresh arrays runs at ~2.3 GB/s here, ~17 ms of
// ResNet-50's ~40 MB of activations per forward). A block is freed by release() (a fused
// forward pass releases every intermediate), or else once the garbage collector has collected
// its view and the event loop has turned (FinalizationRegistry); V8 does not see the wasm memory
// behind a view, so that can take many forward passes, and a synchronous loop frees nothing.
// So outputs of at most `SMALL_OUTPUT_BYTES` are copied out to ordinary arrays, which V8 frees
// as any other: those are a model's last outputs (pooled features, logits), the ones a caller
// keeps and nobody releases, and a loop of forward passes would otherwise hold every one of them
// in wasm memory until it yields (6 KB a ResNet-18 forward). Past `residentLimitBytes` of held
// blocks, all outputs are copied out (correct, slower; warned once). Views of the shared memory
// have one caveat: `t.f32.subarray(...)` does not keep the block alive; copy with slice().
// Inputs that live elsewhere (a user's tensor) are copied in for the call. Packed weights are
// cached per weight tensor, geometry and version (Tensor.version) by the cache the native
// backend uses too (packed-weights.ts), up to `weightCacheBytes`, least recently used dropped
// first: those are freed deterministically.
//
// Threads. Every kernel call is split into (tid, nthreads) slices run by the calling thread and
// the workers. Jobs block the caller in Atomics.wait, which a browser allows only inside a
// worker: in a browser, run the model in a Web Worker (on the main thread it still works, with
// the caller spinning instead of sleeping). Browsers share the memory with workers only on a
// cross-origin isolated page (COOP/COEP headers); elsewhere the backend runs on one thread and
// says so once (console.warn).

import { platform } from '#platform';
import { Tensor } from '../../core/tensor.js';
import { registerBackend, type Backend, type BatchNormGradients, type ChannelMoments, type Conv2dParams, type ConvEpilogue, type Pool2dParams } from '../backend.js';
import { createReferenceBackend } from '../ref/kernels.js';
import { convShapeFields, convShapeOf, matmulFlags, packingKey } from '../kernel-abi.js';
import { FlippedWeights, inputGradientConv } from '../input-gradient.js';
import { PackedWeights } from '../packed-weights.js';
import { Slicing } from '../slicing.js';
import { Heap } from './heap.js';
import { instantiate, Kernel, RK_RELU, readIsa, type KernelExports } from './kernels.js';
import {
  compileKernels, compileKernelsSync, createSharedMemory, STACK_BYTES,
  type CompiledKernels, type WasmBytes, type WasmVariant,
} from './loader.js';
import { CONTROL_BYTES, MAX_THREADS, ThreadPool } from './threads.js';

export type { WasmVariant } from './loader.js';

export interface WasmBackendOptions {
  /** Threads that run kernels, the calling one included; default: the number of cores. */
  threads?: number;
  /** Which build to run; 'auto' (default) prefers relaxed SIMD where the engine validates it. */
  variant?: WasmVariant | 'auto';
  /** The most the shared memory may grow to; default and ceiling 4 GiB. */
  maxMemoryBytes?: number;
  /** Bytes of returned tensors kept in wasm memory before outputs are copied out; default 1 GiB. */
  residentLimitBytes?: number;
  /** Bytes of packed weights kept between calls, least recently used dropped first; default 1 GiB. */
  weightCacheBytes?: number;
  /** Split even the smallest call over every thread (tests of the kernels' slicing); default false. */
  splitSmallOps?: boolean;
  /**
   * Computes a stride-1 convolution's input gradient as a convolution on the forward kernels
   * (src/backends/input-gradient.ts; default true); false runs the backward GEMM + col2im
   * kernel for every stride (tests of that kernel).
   */
  inputGradientByConvolution?: boolean;
  /** The .wasm files' bytes, where they cannot be read from the package (bundlers). */
  wasmBytes?: Partial<Record<WasmVariant, WasmBytes>>;
}

/** Multiply-adds (or elements, for the elementwise kernels) worth giving a thread of their own. */

/**
 * Outputs up to this size are copied out of wasm memory (see the top of the file): 64 KiB take
 * ~30 µs to copy, and ResNet's activations are larger (2048×7×7 floats at 224×224) but its
 * logits and pooled features smaller, up to a batch of 16.
 */
export const SMALL_OUTPUT_BYTES = 64 * 1024;

/** int32 fields of rk_conv2d_shape. */
const CONV_SHAPE_FIELDS = 16;

/** A packed weight and the version of the weight it was packed from (see #packedWeight). */
let warnedSingleThread = false;

/**
 * The threads a backend asked for `requested` may have: one where the platform cannot share the
 * memory with workers (a page that is not cross-origin isolated), said once per page.
 */
function availableThreads(requested: number): number {
  const reason = platform.threadsUnavailableReason();
  if (reason === null || requested <= 1) return requested;
  if (!warnedSingleThread) {
    warnedSingleThread = true;
    platform.warn(`resnet-ts wasm backend: running on 1 thread instead of ${requested}: ${reason}`);
  }
  return 1;
}

export class WasmBackend implements Backend {
  readonly name = 'wasm';
  /** The build in use, and what its kernels say they are (rk_isa). */
  readonly variant: WasmVariant;
  readonly isa: string;

  readonly #kernels: KernelExports;
  readonly #heap: Heap;
  readonly #pool: ThreadPool;
  readonly #shapeAddress: number;
  readonly #shape: Int32Array;
  #threads: number;
  /** How many slices each call is cut into (slicing.ts, as the native backend cuts them). */
  readonly #slicing: Slicing;
  #scratchAddress = 0;
  #scratchBytes = 0;
  #disposed = false;

  /** Address of each tensor view this backend returned, and the bytes they hold. */
  readonly #resident = new WeakMap<Float32Array, number>();
  #residentBytes = 0;
  readonly #residentLimitBytes: number;
  #warnedOverLimit = false;
  readonly #residentFreed = new FinalizationRegistry<number>((address) => this.#freeResident(address));

  /** Packed weights (and linear weights copied in), addresses in the heap (packed-weights.ts). */
  readonly #packed: PackedWeights<number>;

  readonly #reference = createReferenceBackend();
  readonly #flippedWeights = new FlippedWeights();
  readonly #inputGradientByConvolution: boolean;

  constructor(compiled: CompiledKernels, options: WasmBackendOptions = {}) {
    this.variant = compiled.variant;
    const memory = createSharedMemory(options.maxMemoryBytes ?? 2 ** 32);
    this.#kernels = instantiate(compiled.module, memory);
    this.isa = readIsa(this.#kernels, memory);
    this.#heap = new Heap(memory, this.#kernels.__heap_base.value as number);
    this.#residentLimitBytes = options.residentLimitBytes ?? 2 ** 30;
    this.#packed = new PackedWeights<number>(options.weightCacheBytes ?? 2 ** 30, (address) => this.#heap.free(address));
    this.#shapeAddress = this.#heap.alloc(CONV_SHAPE_FIELDS * 4);
    this.#shape = this.#heap.i32(this.#shapeAddress, CONV_SHAPE_FIELDS);
    const threads = availableThreads(Math.max(1, Math.min(MAX_THREADS, Math.floor(options.threads ?? platform.cores()))));
    const control = this.#heap.alloc(CONTROL_BYTES);
    this.#heap.i32(control, CONTROL_BYTES / 4).fill(0);
    const stacks = Array.from({ length: threads - 1 }, () => this.#heap.alloc(STACK_BYTES) + STACK_BYTES);
    this.#pool = new ThreadPool(compiled.module, memory, control, this.#kernels, stacks, platform.spawnWasmThread, platform.mayBlock());
    this.#threads = threads;
    this.#slicing = new Slicing(() => this.#threads, options.splitSmallOps ?? false);
    this.#inputGradientByConvolution = options.inputGradientByConvolution ?? true;
  }

  /** Threads a kernel call is split over (at most the pool's size, set at creation). */
  get threads(): number {
    return this.#threads;
  }

  set threads(n: number) {
    this.#threads = Math.max(1, Math.min(this.#pool.size, Math.floor(n)));
  }
  /** The Backend interface's spelling of `threads`. */
  setThreads(n: number): void {
    this.threads = n;
  }

  getThreads(): number {
    return this.threads;
  }


  get disposed(): boolean {
    return this.#disposed;
  }

  /** Resolves once every worker thread is up (calls made earlier run on the threads that are). */
  whenReady(): Promise<void> {
    return this.#pool.whenReady();
  }

  /** Memory figures, and how many kernel slices worker threads have run. */
  stats(): { memoryBytes: number; liveBytes: number; residentBytes: number; weightBytes: number; workerSlices: number } {
    return {
      memoryBytes: this.#heap.memoryBytes,
      liveBytes: this.#heap.liveBytes,
      residentBytes: this.#residentBytes,
      weightBytes: this.#packed.bytes,
      workerSlices: this.#pool.workerSlices,
    };
  }

  /** Stops the worker threads; calls made afterwards run on the calling thread alone. */
  dispose(): void {
    this.#disposed = true;
    this.#threads = 1;
    this.#pool.dispose();
  }

  conv2d(x: Tensor, weight: Tensor, bias: Tensor | null, p: Conv2dParams, outH: number, outW: number, epilogue: ConvEpilogue = {}): Tensor {
    const [batch] = x.shape;
    const [outChannels] = weight.shape;
    this.#shape.set(convShapeFields(x, weight, p, outH, outW));
    const packed = this.#packedWeight(weight, epilogue.scale ?? null);
    const temporaries: number[] = [];
    const input = this.#input(x, temporaries);
    const biasAddress = bias ? this.#input(bias, temporaries) : 0;
    const residual = epilogue.residual ? this.#input(epilogue.residual, temporaries) : 0;
    const output = this.#output(batch * outChannels * outH * outW);
    // As many threads as the work is worth waking; the kernel says how many slices they take
    // (more than threads where slices are disjoint parts of one pass).
    const threads = this.#slicing.conv(batch * outChannels * outH * outW, weight.shape);
    const slices = threads > 1 ? this.#kernels.rk_conv2d_slices(this.#shapeAddress, threads) : 1;
    const scratchBytes = (this.#kernels.rk_conv2d_scratch_floats(this.#shapeAddress) >>> 0) * 4;
    const scratch = this.#scratch(scratchBytes * this.#threads); // one block per thread
    const flags = epilogue.relu ? RK_RELU : 0;
    this.#run(Kernel.conv2d, [this.#shapeAddress, input, packed, biasAddress, residual, flags, output, scratch, scratchBytes], slices, temporaries);
    return this.#result(output, [batch, outChannels, outH, outW]);
  }

  channelAffine(x: Tensor, scale: Float32Array, shift: Float32Array): Tensor {
    const [batch, channels] = x.shape;
    const plane = x.size / (batch * channels);
    const temporaries: number[] = [];
    const input = this.#input(x, temporaries);
    const scaleAddress = this.#copyIn(scale, temporaries);
    const shiftAddress = this.#copyIn(shift, temporaries);
    const output = this.#output(x.size);
    const slices = this.#slicing.elements(x.size);
    this.#run(Kernel.channelAffine, [input, scaleAddress, shiftAddress, batch, channels, plane, output], slices, temporaries);
    return this.#result(output, x.shape);
  }

  /** Training-mode statistics; the reference kernel serves (the views are ordinary arrays). */
  channelMoments(x: Tensor): ChannelMoments {
    const [batch, channels] = x.shape;
    if (x.size === 0) return this.#reference.channelMoments(x);
    const temporaries: number[] = [];
    const input = this.#input(x, temporaries);
    const moments = this.#heap.alloc(2 * channels * 8);
    temporaries.push(moments);
    const args = [input, batch, channels, x.size / (batch * channels), moments, moments + channels * 8];
    let mean = new Float64Array(0);
    let variance = new Float64Array(0);
    // Copied out before #run frees the temporaries (the moments among them) in its finally.
    this.#run(Kernel.channelMoments, args, this.#slicing.elements(x.size), temporaries, () => {
      mean = this.#heap.f64(moments, channels).slice();
      variance = this.#heap.f64(moments + channels * 8, channels).slice();
    });
    return { mean, variance };
  }

  relu(x: Tensor): Tensor {
    const temporaries: number[] = [];
    const input = this.#input(x, temporaries);
    const output = this.#output(x.size);
    this.#run(Kernel.relu, [input, x.size, output], this.#slicing.elements(x.size), temporaries);
    return this.#result(output, x.shape);
  }

  add(a: Tensor, b: Tensor): Tensor {
    const temporaries: number[] = [];
    const left = this.#input(a, temporaries);
    const right = this.#input(b, temporaries);
    const output = this.#output(a.size);
    this.#run(Kernel.add, [left, right, a.size, 0, output], this.#slicing.elements(a.size), temporaries);
    return this.#result(output, a.shape);
  }

  maxPool2d(x: Tensor, p: Pool2dParams, outH: number, outW: number): Tensor {
    const [batch, channels, inH, inW] = x.shape;
    const temporaries: number[] = [];
    const input = this.#input(x, temporaries);
    const size = batch * channels * outH * outW;
    const output = this.#output(size);
    const args = [
      input, batch, channels, inH, inW, p.kernel[0], p.kernel[1], p.stride[0], p.stride[1],
      p.padding[0], p.padding[1], p.dilation[0], p.dilation[1], outH, outW, output,
    ];
    this.#run(Kernel.maxPool2d, args, this.#slicing.elements(size * p.kernel[0] * p.kernel[1]), temporaries);
    return this.#result(output, [batch, channels, outH, outW]);
  }

  adaptiveAvgPool2d(x: Tensor, outH: number, outW: number): Tensor {
    const [batch, channels, inH, inW] = x.shape;
    const temporaries: number[] = [];
    const input = this.#input(x, temporaries);
    const output = this.#output(batch * channels * outH * outW);
    const args = [input, batch, channels, inH, inW, outH, outW, output];
    this.#run(Kernel.adaptiveAvgPool2d, args, this.#slicing.elements(x.size), temporaries);
    return this.#result(output, [batch, channels, outH, outW]);
  }

  linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
    const [batch, inFeatures] = x.shape;
    const outFeatures = weight.shape[0];
    const temporaries: number[] = [];
    const input = this.#input(x, temporaries);
    const w = this.#packed.get(weight, 'linear', weight.size * 4, null, () => this.#heap.alloc(weight.size * 4), (address) =>
      this.#heap.f32(address, weight.size).set(weight.f32),
    );
    const biasAddress = bias ? this.#input(bias, temporaries) : 0;
    const output = this.#output(batch * outFeatures);
    const args = [input, w, biasAddress, batch, inFeatures, outFeatures, output];
    this.#run(Kernel.linear, args, this.#slicing.macs(batch * inFeatures * outFeatures), temporaries);
    return this.#result(output, [batch, outFeatures]);
  }

  // Backward kernels. Empty tensors never reach C.

  conv2dBackwardInput(dy: Tensor, weight: Tensor, p: Conv2dParams, inH: number, inW: number): Tensor {
    const [batch, , outH, outW] = dy.shape;
    const [, groupChannels, kh, kw] = weight.shape;
    const xShape = [batch, groupChannels * p.groups, inH, inW];
    if (batch === 0) return Tensor.zeros(xShape);
    const asConv = inputGradientConv(p, kh, kw);
    if (asConv && this.#inputGradientByConvolution) return this.conv2d(dy, this.#flippedWeights.get(weight, p.groups), null, asConv, inH, inW);
    this.#shape.set(convShapeOf(xShape, weight.shape, p, outH, outW));
    const temporaries: number[] = [];
    const gradient = this.#input(dy, temporaries);
    const w = this.#input(weight, temporaries);
    const output = this.#output(batch * xShape[1] * inH * inW);
    const [scratch, scratchBytes] = this.#gemmScratch();
    const slices = this.#slicing.conv(dy.size, weight.shape);
    this.#run(Kernel.conv2dBackwardInput, [this.#shapeAddress, gradient, w, output, scratch, scratchBytes], slices, temporaries);
    return this.#result(output, xShape);
  }

  conv2dBackwardWeight(x: Tensor, dy: Tensor, p: Conv2dParams, kh: number, kw: number): Tensor {
    const [, , outH, outW] = dy.shape;
    const weightShape = [dy.shape[1], x.shape[1] / p.groups, kh, kw];
    if (x.size === 0) return Tensor.zeros(weightShape);
    this.#shape.set(convShapeOf(x.shape, weightShape, p, outH, outW));
    const temporaries: number[] = [];
    const input = this.#input(x, temporaries);
    const gradient = this.#input(dy, temporaries);
    const output = this.#output(weightShape[0] * weightShape[1] * kh * kw);
    const [scratch, scratchBytes] = this.#gemmScratch(this.#kernels.rk_conv2d_backward_weight_scratch_floats(this.#shapeAddress));
    const slices = this.#slicing.conv(dy.size, weightShape);
    this.#run(Kernel.conv2dBackwardWeight, [this.#shapeAddress, input, gradient, output, scratch, scratchBytes], slices, temporaries);
    return this.#result(output, weightShape);
  }

  channelSums(dy: Tensor): Float32Array {
    const [batch, channels] = dy.shape;
    if (dy.size === 0) return new Float32Array(channels);
    const temporaries: number[] = [];
    const gradient = this.#input(dy, temporaries);
    const sums = this.#output(channels);
    temporaries.push(sums);
    const args = [gradient, batch, channels, dy.size / (batch * channels), sums];
    // Copied out before #run frees the temporaries (sums among them) in its finally.
    let result = new Float32Array(0);
    this.#run(Kernel.channelSums, args, this.#slicing.elements(dy.size), temporaries, () => {
      result = this.#heap.f32(sums, channels).slice();
    });
    return result;
  }

  batchNormBackward(x: Tensor, dy: Tensor, mean: Float64Array, invStd: Float64Array, gamma: Float32Array | null): BatchNormGradients {
    const [batch, channels] = x.shape;
    if (x.size === 0) return { dx: Tensor.zeros(x.shape), dGamma: new Float32Array(channels), dBeta: new Float32Array(channels) };
    const temporaries: number[] = [];
    const input = this.#input(x, temporaries);
    const gradient = this.#input(dy, temporaries);
    const meanAddress = this.#copyInF64(mean, temporaries);
    const invStdAddress = this.#copyInF64(invStd, temporaries);
    const gammaAddress = gamma ? this.#copyIn(gamma, temporaries) : 0;
    const output = this.#output(x.size);
    const dGamma = this.#output(channels);
    const dBeta = this.#output(channels);
    temporaries.push(dGamma, dBeta);
    const args = [input, gradient, meanAddress, invStdAddress, gammaAddress, batch, channels, x.size / (batch * channels), output, dGamma, dBeta];
    const gradients = { dGamma: new Float32Array(0), dBeta: new Float32Array(0) };
    this.#run(Kernel.batchNormBackward, args, this.#slicing.elements(x.size), temporaries, () => {
      gradients.dGamma = this.#heap.f32(dGamma, channels).slice();
      gradients.dBeta = this.#heap.f32(dBeta, channels).slice();
    });
    return { dx: this.#result(output, x.shape), ...gradients };
  }

  maxPool2dBackward(x: Tensor, dy: Tensor, p: Pool2dParams): Tensor {
    const [batch, channels, inH, inW] = x.shape;
    const [, , outH, outW] = dy.shape;
    if (dy.size === 0) return Tensor.zeros(x.shape);
    const temporaries: number[] = [];
    const input = this.#input(x, temporaries);
    const gradient = this.#input(dy, temporaries);
    const output = this.#output(x.size);
    const args = [
      input, gradient, batch, channels, inH, inW, p.kernel[0], p.kernel[1], p.stride[0], p.stride[1],
      p.padding[0], p.padding[1], p.dilation[0], p.dilation[1], outH, outW, output,
    ];
    this.#run(Kernel.maxPool2dBackward, args, this.#slicing.elements(dy.size * p.kernel[0] * p.kernel[1]), temporaries);
    return this.#result(output, x.shape);
  }

  adaptiveAvgPool2dBackward(dy: Tensor, inH: number, inW: number): Tensor {
    const [batch, channels, outH, outW] = dy.shape;
    const shape = [batch, channels, inH, inW];
    if (batch * channels === 0) return Tensor.zeros(shape);
    const temporaries: number[] = [];
    const gradient = this.#input(dy, temporaries);
    const output = this.#output(batch * channels * inH * inW);
    const args = [gradient, batch, channels, inH, inW, outH, outW, output];
    this.#run(Kernel.adaptiveAvgPool2dBackward, args, this.#slicing.elements(batch * channels * inH * inW), temporaries);
    return this.#result(output, shape);
  }

  reluBackward(y: Tensor, dy: Tensor): Tensor {
    const temporaries: number[] = [];
    const output = this.#input(y, temporaries);
    const gradient = this.#input(dy, temporaries);
    const dx = this.#output(y.size);
    this.#run(Kernel.reluBackward, [output, gradient, y.size, dx], this.#slicing.elements(y.size), temporaries);
    return this.#result(dx, y.shape);
  }

  matmul(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor {
    const [m, depth] = transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
    const n = transB ? b.shape[0] : b.shape[1];
    if (m * n === 0) return Tensor.zeros([m, n]);
    const temporaries: number[] = [];
    const left = this.#input(a, temporaries);
    const right = this.#input(b, temporaries);
    const output = this.#output(m * n);
    const [scratch, scratchBytes] = this.#gemmScratch();
    const args = [left, right, m, n, depth, matmulFlags(transA, transB), output, scratch, scratchBytes];
    this.#run(Kernel.matmul, args, this.#slicing.macs(m * n * depth), temporaries);
    return this.#result(output, [m, n]);
  }

  /** Scratch for every thread of a GEMM-based kernel (`floats` each, default rk_gemm_scratch_floats), and the bytes of each thread's block. */
  #gemmScratch(floats = this.#kernels.rk_gemm_scratch_floats()): [number, number] {
    const bytes = Math.ceil((floats >>> 0) / 16) * 64;
    return [this.#scratch(bytes * this.#threads), bytes];
  }

  #copyInF64(data: Float64Array, temporaries: number[]): number {
    const address = this.#heap.alloc(data.byteLength);
    temporaries.push(address);
    this.#heap.f64(address, data.length).set(data);
    return address;
  }

  /** Runs a kernel, then `collect` (reading outputs that are among the temporaries), then frees the temporaries. */
  #run(kernel: number, args: number[], slices: number, temporaries: number[], collect?: () => void): void {
    try {
      this.#pool.run(kernel, args, slices);
      collect?.();
    } finally {
      for (const address of temporaries) this.#heap.free(address);
    }
  }

  /** The address of x's data in wasm memory: where it lives, or a temporary copy. */
  #input(x: Tensor, temporaries: number[]): number {
    return this.#resident.get(x.f32) ?? this.#copyIn(x.f32, temporaries);
  }

  #copyIn(data: Float32Array, temporaries: number[]): number {
    const address = this.#heap.alloc(data.byteLength);
    temporaries.push(address);
    this.#heap.f32(address, data.length).set(data);
    return address;
  }

  /** A block for an output of `size` floats. */
  #output(size: number): number {
    return this.#heap.alloc(size * 4);
  }

  /** Wraps an output block as a tensor: a view that keeps it resident, or a copy if small or over the limit. */
  #result(address: number, shape: readonly number[]): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    const view = this.#heap.f32(address, size);
    if (view.byteLength <= SMALL_OUTPUT_BYTES) {
      const copy = view.slice();
      this.#heap.free(address);
      return new Tensor(copy, shape);
    }
    if (this.#residentBytes + view.byteLength > this.#residentLimitBytes) {
      if (!this.#warnedOverLimit && this.#residentLimitBytes > 0) {
        this.#warnedOverLimit = true;
        platform.warn(
          `resnet-ts wasm backend: ${(this.#residentLimitBytes / 2 ** 20).toFixed(0)} MiB of outputs are still held in wasm memory ` +
            '(they are freed only after the garbage collector has collected them and the event loop turns); ' +
            'outputs are copied out until then, which is slower. See residentLimitBytes.',
        );
      }
      const copy = view.slice();
      this.#heap.free(address);
      return new Tensor(copy, shape);
    }
    this.#residentBytes += view.byteLength;
    this.#resident.set(view, address);
    this.#residentFreed.register(view, address, view);
    return new Tensor(view, shape);
  }

  /** Frees an output of this backend now (Backend.release); anything else is ignored. */
  release(t: Tensor): void {
    if (!(t.data instanceof Float32Array)) return;
    const address = this.#resident.get(t.data);
    if (address === undefined) return;
    this.#resident.delete(t.data);
    this.#residentFreed.unregister(t.data);
    this.#freeResident(address);
  }

  #freeResident(address: number): void {
    this.#residentBytes -= this.#heap.sizeOf(address);
    this.#heap.free(address);
  }

  /** A block of at least `bytes` for the conv kernels' scratch, kept and grown between calls. */
  #scratch(bytes: number): number {
    if (bytes > this.#scratchBytes) {
      if (this.#scratchAddress) this.#heap.free(this.#scratchAddress);
      this.#scratchBytes = Math.max(bytes, this.#scratchBytes * 2);
      this.#scratchAddress = this.#heap.alloc(this.#scratchBytes);
    }
    return this.#scratchAddress;
  }

  /** rk_conv2d_pack of `weight` for the geometry now in #shape, cached per weight tensor. */
  #packedWeight(weight: Tensor, scale: Float64Array | null): number {
    const bytes = (this.#kernels.rk_conv2d_packed_floats(this.#shapeAddress) >>> 0) * 4;
    const key = packingKey(this.#shape, this.#kernels.rk_conv2d_packing(this.#shapeAddress));
    return this.#packed.get(weight, key, bytes, scale, () => this.#heap.alloc(bytes), (address) => {
      const temporaries: number[] = [];
      try {
        let scaleAddress = 0;
        if (scale) {
          scaleAddress = this.#heap.alloc(scale.byteLength);
          temporaries.push(scaleAddress);
          this.#heap.f64(scaleAddress, scale.length).set(scale);
        }
        // BatchNorm's scale is folded in as the weight is packed (one pass, no folded copy).
        this.#kernels.rk_conv2d_pack(this.#shapeAddress, this.#copyIn(weight.f32, temporaries), scaleAddress, address, 0, 1);
      } finally {
        for (const t of temporaries) this.#heap.free(t);
      }
    });
  }
}

/** A wasm backend, compiled and started synchronously (Node >= 20.16, or with `wasmBytes`). */
export function createWasmBackend(options: WasmBackendOptions = {}): WasmBackend {
  return new WasmBackend(compileKernelsSync(options.variant ?? 'auto', options.wasmBytes), options);
}

let shared: WasmBackend | null = null;

/** The instance setBackend('wasm') selects: created on first use, recreated after dispose(). */
export function defaultWasmBackend(): WasmBackend {
  if (!shared || shared.disposed) shared = createWasmBackend();
  return shared;
}

/**
 * Compiles the kernels without blocking (fetching them in a browser), waits until every
 * worker thread is up, and makes the result the instance setBackend('wasm') selects from
 * then on (replacing, and disposing, an earlier one). Call it before setBackend('wasm').
 */
export async function initWasmBackend(options: WasmBackendOptions = {}): Promise<WasmBackend> {
  const backend = new WasmBackend(await compileKernels(options.variant ?? 'auto', options.wasmBytes), options);
  await backend.whenReady();
  shared?.dispose();
  shared = backend;
  // Drops the registry's cached instance, so that setBackend('wasm') picks this one.
  registerBackend('wasm', defaultWasmBackend);
  return backend;
}
