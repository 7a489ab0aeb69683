// The C kernels of csrc/kernels.h as the WebAssembly module exports them, and the one table
// that calls a kernel from the int32 arguments of a job. The calling thread and the worker
// threads both run jobs through `callKernel`, so a job means the same thing on every thread.

/** Exports of wasm/kernels*.wasm (scripts/build-wasm.sh lists them). Pointers are byte offsets. */
export interface KernelExports {
  rk_conv2d_packing(shape: number): number;
  rk_conv2d_packed_floats(shape: number): number;
  /** scale: address of O float64 (BatchNorm folded in) or 0; tid, nthreads: the slice. */
  rk_conv2d_pack(shape: number, weight: number, scale: number, packed: number, tid: number, nthreads: number): void;
  rk_conv2d_scratch_floats(shape: number): number;
  rk_conv2d_slices(shape: number, nthreads: number): number;
  rk_conv2d(shape: number, x: number, packed: number, bias: number, residual: number, flags: number, y: number, scratch: number, tid: number, nthreads: number): void;
  rk_max_pool2d(
    x: number, batch: number, channels: number, inH: number, inW: number, kernelH: number, kernelW: number,
    strideH: number, strideW: number, padH: number, padW: number, dilationH: number, dilationW: number,
    outH: number, outW: number, y: number, tid: number, nthreads: number,
  ): void;
  rk_adaptive_avg_pool2d(x: number, batch: number, channels: number, inH: number, inW: number, outH: number, outW: number, y: number, tid: number, nthreads: number): void;
  rk_linear(x: number, w: number, bias: number, batch: number, inFeatures: number, outFeatures: number, y: number, tid: number, nthreads: number): void;
  rk_channel_affine(x: number, scale: number, shift: number, batch: number, channels: number, plane: number, y: number, tid: number, nthreads: number): void;
  /** n is int64_t in C, so a BigInt here. */
  rk_add(a: number, b: number, n: bigint, flags: number, y: number, tid: number, nthreads: number): void;
  rk_relu(x: number, n: bigint, y: number, tid: number, nthreads: number): void;
  rk_gemm_scratch_floats(): number;
  rk_conv2d_backward_input(shape: number, dy: number, weight: number, dx: number, scratch: number, tid: number, nthreads: number): void;
  rk_conv2d_backward_weight_scratch_floats(shape: number): number;
  rk_conv2d_backward_weight(shape: number, x: number, dy: number, dw: number, scratch: number, tid: number, nthreads: number): void;
  rk_channel_sums(dy: number, batch: number, channels: number, plane: number, sums: number, tid: number, nthreads: number): void;
  /** mean, invStd: addresses of C float64; gamma: of C floats, or 0. */
  rk_batch_norm_backward(
    x: number, dy: number, mean: number, invStd: number, gamma: number, batch: number, channels: number, plane: number,
    dx: number, dGamma: number, dBeta: number, tid: number, nthreads: number,
  ): void;
  rk_max_pool2d_backward(
    x: number, dy: number, batch: number, channels: number, inH: number, inW: number, kernelH: number, kernelW: number,
    strideH: number, strideW: number, padH: number, padW: number, dilationH: number, dilationW: number,
    outH: number, outW: number, dx: number, tid: number, nthreads: number,
  ): void;
  rk_adaptive_avg_pool2d_backward(dy: number, batch: number, channels: number, inH: number, inW: number, outH: number, outW: number, dx: number, tid: number, nthreads: number): void;
  rk_relu_backward(y: number, dy: number, n: bigint, dx: number, tid: number, nthreads: number): void;
  /** flags: matmulFlags (RK_TRANS_A, RK_TRANS_B). */
  rk_matmul(a: number, b: number, m: number, n: number, k: number, flags: number, c: number, scratch: number, tid: number, nthreads: number): void;
  rk_isa(): number;
  /** Each thread's instance gets its own stack: this is set to the top of it before any call. */
  __stack_pointer: WebAssembly.Global;
  /** The first byte after the module's data and main stack: our allocator's heap starts here. */
  __heap_base: WebAssembly.Global;
}

/** RK_RELU of kernels.h. */
export const RK_RELU = 1;

/** The kernels a job can run; a job stores the index. */
export const Kernel = {
  conv2d: 0,
  maxPool2d: 1,
  adaptiveAvgPool2d: 2,
  linear: 3,
  channelAffine: 4,
  add: 5,
  relu: 6,
  conv2dBackwardInput: 7,
  conv2dBackwardWeight: 8,
  channelSums: 9,
  batchNormBackward: 10,
  maxPool2dBackward: 11,
  adaptiveAvgPool2dBackward: 12,
  reluBackward: 13,
  matmul: 14,
} as const;
export type KernelId = (typeof Kernel)[keyof typeof Kernel];

/** The most int32 arguments any kernel takes (rk_max_pool2d_backward: 17), tid and nthreads aside. */
export const MAX_KERNEL_ARGS = 20;

/**
 * Runs slice `tid` of `nthreads` of a kernel whose arguments are `a`, in the order of its C
 * signature (pointers and sizes as int32; int64 counts are converted here).
 */
export function callKernel(k: KernelExports, kernel: number, a: Int32Array, tid: number, nthreads: number, thread: number): void {
  switch (kernel) {
    case Kernel.conv2d:
      // a[7]: the scratch of all threads, a[8] bytes each: a thread keeps its block for every
      // slice it claims.
      return k.rk_conv2d(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7] + thread * a[8], tid, nthreads);
    case Kernel.maxPool2d:
      return k.rk_max_pool2d(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], tid, nthreads);
    case Kernel.adaptiveAvgPool2d:
      return k.rk_adaptive_avg_pool2d(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], tid, nthreads);
    case Kernel.linear:
      return k.rk_linear(a[0], a[1], a[2], a[3], a[4], a[5], a[6], tid, nthreads);
    case Kernel.channelAffine:
      return k.rk_channel_affine(a[0], a[1], a[2], a[3], a[4], a[5], a[6], tid, nthreads);
    case Kernel.add:
      return k.rk_add(a[0], a[1], BigInt(a[2] >>> 0), a[3], a[4], tid, nthreads);
    case Kernel.relu:
      return k.rk_relu(a[0], BigInt(a[1] >>> 0), a[2], tid, nthreads);
    // The GEMM-based backward kernels: a[4] (a[7] for matmul) is the scratch of all threads,
    // a[5] (a[8]) bytes each, as for conv2d.
    case Kernel.conv2dBackwardInput:
      return k.rk_conv2d_backward_input(a[0], a[1], a[2], a[3], a[4] + thread * a[5], tid, nthreads);
    case Kernel.conv2dBackwardWeight:
      return k.rk_conv2d_backward_weight(a[0], a[1], a[2], a[3], a[4] + thread * a[5], tid, nthreads);
    case Kernel.channelSums:
      return k.rk_channel_sums(a[0], a[1], a[2], a[3], a[4], tid, nthreads);
    case Kernel.batchNormBackward:
      return k.rk_batch_norm_backward(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], tid, nthreads);
    case Kernel.maxPool2dBackward:
      return k.rk_max_pool2d_backward(
        a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], a[16], tid, nthreads,
      );
    case Kernel.adaptiveAvgPool2dBackward:
      return k.rk_adaptive_avg_pool2d_backward(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], tid, nthreads);
    case Kernel.reluBackward:
      return k.rk_relu_backward(a[0], a[1], BigInt(a[2] >>> 0), a[3], tid, nthreads);
    case Kernel.matmul:
      return k.rk_matmul(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7] + thread * a[8], tid, nthreads);
    default:
      throw new RangeError(`unknown wasm kernel ${kernel}`);
  }
}

/** The module's rk_isa() string, read from memory: "wasm-simd128-relaxed" or "wasm-simd128". */
export function readIsa(k: KernelExports, memory: WebAssembly.Memory): string {
  const bytes = new Uint8Array(memory.buffer);
  let end = k.rk_isa() >>> 0;
  const start = end;
  while (bytes[end] !== 0) end++;
  // TextDecoder refuses views of shared memory, hence the copy.
  return new TextDecoder().decode(bytes.slice(start, end));
}
