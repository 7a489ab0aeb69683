// How many slices (the kernels' nthreads) one call of a kernel of csrc/kernels.h is cut into:
// one policy for the native and the wasm backends. Waking a thread costs microseconds, so a
// slice must hold at least a minimum of work; the kernel then computes its (tid, nthreads)
// slice itself, and the convolution may ask for more slices than threads (rk_conv2d_slices).
// A call's work is what it multiply-accumulates (convolutions, linear, matmul) or the elements
// it touches (the rest: pooling counts its window's taps); the two backends measure each op the
// same way, so they split the same call alike.

/** Multiply-accumulates a slice must hold (convolutions, linear, matmul). */
const MIN_MACS_PER_SLICE = 1 << 18;
/** Elements a slice must touch (elementwise ops, pooling, normalisation, packing). */
const MIN_ELEMENTS_PER_SLICE = 1 << 16;

/** Slices of `work` for `threads` threads: one per `minimum`, at least 1, at most threads; all of them when `everything` (tests of the slicing). */
function slicesOf(work: number, minimum: number, threads: number, everything: boolean): number {
  if (everything) return threads;
  return Math.max(1, Math.min(threads, Math.floor(work / minimum)));
}

/** The slices of each kind of call, for `threads` threads. */
export class Slicing {
  /** `splitSmallOps`: split even the smallest call over every thread (tests of the kernels' slicing). */
  constructor(private readonly threads: () => number, private readonly splitSmallOps = false) {}

  /** A call of `macs` multiply-accumulates. */
  macs(macs: number): number {
    return slicesOf(macs, MIN_MACS_PER_SLICE, this.threads(), this.splitSmallOps);
  }

  /**
   * A convolution, or either of its gradients, over `outputs` elements of (N, O, OH, OW) (dy for
   * the gradients) with a weight of `weightShape` (O, C/groups, kh, kw): each output element takes
   * C/groups · kh · kw multiply-accumulates.
   */
  conv(outputs: number, weightShape: readonly number[]): number {
    return this.macs(outputs * weightShape[1] * weightShape[2] * weightShape[3]);
  }

  /** A call that touches `elements` elements. */
  elements(elements: number): number {
    return slicesOf(elements, MIN_ELEMENTS_PER_SLICE, this.threads(), this.splitSmallOps);
  }
}
