// The tensor every layer of resnet-ts passes around: a dense, contiguous, row-major
// (C order) array with a shape and a dtype. Views with strides exist only inside the
// file readers, which materialise them into contiguous tensors.
//
// Every tensor carries a version (torch's `_version`): a stamp that changes whenever the
// library writes into its data in place (copy_, fill_, set_, the initialisers, BatchNorm's
// running statistics, loadStateDict). Caches derived from a tensor's values (packed weights,
// BatchNorm folded into a convolution) key on (tensor, version): they know, they do not guess.
// Code that writes into `tensor.data` itself calls `tensor.bumpVersion()` afterwards.
//
// Autograd's part of a tensor lives here too, as torch keeps it on the tensor: `requiresGrad`,
// the accumulated `grad`, and `gradFn`, the graph node of the op that made it (src/ops/autograd.ts
// builds and runs the graph; core knows a node only as something with a name). Saved tensors
// of that graph are checked against their versions, so an in-place write after the forward
// fails loudly instead of giving wrong gradients.

export type DType = 'float32' | 'int64';

export type TensorData = Float32Array | BigInt64Array;

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeToString(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * The source of version stamps. One clock for all tensors, so that a stamp is never reused:
 * a tensor that adopts another's counter (set_) can never show a stamp a cache saw before.
 */
let versionClock = 0;

/** A version counter, shared by a tensor and its reshaped views (they write the same data). */
interface VersionCounter {
  stamp: number;
}

/** A node of the autograd graph (the op that made a tensor), as core sees it; see src/ops/autograd.ts. */
export interface GradFn {
  /** torch's name for the node: ConvolutionBackward0, ReluBackward0, … */
  readonly name: string;
}

/** How Tensor.backward reaches the autograd engine, which lives above core (src/ops/autograd.ts registers it). */
export type BackwardEngine = (root: Tensor, gradient: Tensor | undefined, options: { retainGraph?: boolean }) => void;

let backwardEngine: BackwardEngine | null = null;

/** Called once by src/ops/autograd.ts. */
export function registerBackwardEngine(engine: BackwardEngine): void {
  backwardEngine = engine;
}

function checkShape(shape: Shape): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`invalid tensor shape ${shapeToString(shape)}`);
  }
}

export class Tensor {
  readonly shape: Shape;
  readonly dtype: DType;
  readonly data: TensorData;
  /** A meta tensor has a shape and no data: summaries run the network on these to get shapes for free. */
  readonly isMeta: boolean;
  #version: VersionCounter;
  #requiresGrad = false;
  /**
   * The gradient that backward() accumulated into this leaf (a tensor of this shape), or null.
   * It accumulates over backward passes until zeroed (Module.zeroGrad, Optimizer.zeroGrad).
   */
  grad: Tensor | null = null;
  /** The op that made this tensor while autograd recorded (null for leaves: inputs, parameters). */
  gradFn: GradFn | null = null;

  constructor(data: TensorData, shape: Shape, meta = false) {
    checkShape(shape);
    const n = numel(shape);
    this.isMeta = meta;
    if (!meta && data.length !== n) {
      throw new RangeError(`tensor data has ${data.length} elements but shape ${shapeToString(shape)} needs ${n}`);
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.dtype = data instanceof BigInt64Array ? 'int64' : 'float32';
    this.#version = { stamp: ++versionClock };
  }

  /**
   * Changes whenever the library writes into this tensor's data in place (and for its reshaped
   * views, which share the data). Equal versions mean unchanged values, as long as writes
   * through `data` are followed by bumpVersion().
   */
  get version(): number {
    return this.#version.stamp;
  }

  /**
   * Marks the data as changed: call it after writing into `data` directly (the library's own
   * in-place writes do it), so that caches keyed on the version (packed weights, folded
   * BatchNorm) are rebuilt.
   */
  bumpVersion(): this {
    this.#version.stamp = ++versionClock;
    return this;
  }

  /** Whether gradients flow to this tensor: a leaf marked with requiresGrad_(), or the output of a recorded op. */
  get requiresGrad(): boolean {
    return this.#requiresGrad || this.gradFn !== null;
  }

  set requiresGrad(flag: boolean) {
    this.requiresGrad_(flag);
  }

  /** A leaf is a tensor no recorded op made: backward() accumulates its gradient into `grad`. */
  get isLeaf(): boolean {
    return this.gradFn === null;
  }

  /**
   * Marks a leaf as one whose gradient backward() computes (torch's requires_grad_). Only
   * float32 tensors can require gradients; an op's output cannot be unmarked (detach() it).
   */
  requiresGrad_(flag = true): this {
    if (!flag && this.gradFn) {
      throw new Error(`you can only change requiresGrad flags of leaf variables (this tensor is the output of ${this.gradFn.name}); use detach()`);
    }
    if (flag && this.dtype !== 'float32') throw new TypeError(`only float32 tensors can require gradients, got ${this.dtype}`);
    this.#requiresGrad = flag;
    return this;
  }

  /** The same data (shared, with its version counter) outside the autograd graph: a leaf that requires no gradient. */
  detach(): Tensor {
    const view = new Tensor(this.data, this.shape, this.isMeta);
    view.#version = this.#version;
    return view;
  }

  /**
   * Computes the gradient of this tensor with respect to every leaf that requires one and adds
   * it to the leaf's `grad`. Without `gradient` this must be a one-element tensor (a loss); with
   * it, `gradient` (this shape) is the vector the Jacobian is multiplied by. The graph's saved
   * tensors are freed afterwards unless `retainGraph`.
   */
  backward(gradient?: Tensor, options: { retainGraph?: boolean } = {}): void {
    if (!backwardEngine) throw new Error('backward: the autograd engine is not loaded (import resnet-ts or its ops)');
    backwardEngine(this, gradient, options);
  }

  static zeros(shape: Shape, dtype: DType = 'float32'): Tensor {
    const n = numel(shape);
    return new Tensor(dtype === 'int64' ? new BigInt64Array(n) : new Float32Array(n), shape);
  }

  static meta(shape: Shape): Tensor {
    return new Tensor(new Float32Array(0), shape, true);
  }

  static full(shape: Shape, value: number): Tensor {
    return new Tensor(new Float32Array(numel(shape)).fill(value), shape);
  }

  static from(values: ArrayLike<number>, shape?: Shape): Tensor {
    return new Tensor(Float32Array.from(values), shape ?? [values.length]);
  }

  /**
   * An int64 tensor (torch.long; stored as a BigInt64Array) from numbers or bigints: class
   * indices for F.crossEntropy, say.
   */
  static int64(values: ArrayLike<number | bigint>, shape?: Shape): Tensor {
    const data = new BigInt64Array(values.length);
    for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
    return new Tensor(data, shape ?? [values.length]);
  }

  /** A 0-d int64 tensor, as torch stores BatchNorm's num_batches_tracked. */
  static int64Scalar(value: number | bigint): Tensor {
    return new Tensor(BigInt64Array.of(BigInt(value)), []);
  }

  get size(): number {
    return numel(this.shape);
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** The float32 data; throws for int64 tensors, which no kernel takes. */
  get f32(): Float32Array {
    if (!(this.data instanceof Float32Array)) throw new TypeError(`expected a float32 tensor, got ${this.dtype}`);
    return this.data;
  }

  /**
   * A view of the same data in another shape (one element count; -1 infers one dimension). It
   * is not recorded by autograd: F.reshape and F.flatten are the differentiable forms.
   */
  reshape(shape: Shape): Tensor {
    const resolved = [...shape];
    const bad = resolved.find((d) => !Number.isSafeInteger(d) || d < -1);
    if (bad !== undefined) throw new RangeError(`reshape: invalid dimension ${bad} in ${shapeToString(shape)}`);
    const infer = resolved.indexOf(-1);
    if (infer >= 0) {
      if (resolved.indexOf(-1, infer + 1) >= 0) throw new RangeError(`reshape: only one dimension can be inferred, got ${shapeToString(shape)}`);
      const known = numel(resolved.filter((_, i) => i !== infer));
      // As torch: with a zero among the given sizes, -1 could be anything.
      if (known === 0) throw new RangeError(`cannot reshape tensor of ${this.size} elements into shape ${shapeToString(shape)} because the unspecified dimension size -1 can be any value and is ambiguous`);
      if (this.size % known !== 0) throw new RangeError(`cannot reshape tensor of shape ${shapeToString(this.shape)} to ${shapeToString(shape)}`);
      resolved[infer] = this.size / known;
    }
    if (numel(resolved) !== this.size) {
      throw new RangeError(`cannot reshape tensor of shape ${shapeToString(this.shape)} to ${shapeToString(shape)}`);
    }
    const view = new Tensor(this.data, resolved, this.isMeta);
    view.#version = this.#version;
    return view;
  }

  clone(): Tensor {
    if (this.isMeta) return this;
    return new Tensor(this.data.slice() as TensorData, this.shape);
  }

  /** Copies `src` into this tensor in place (same shape; int64 and float32 convert). */
  copy_(src: Tensor): this {
    if (!shapesEqual(src.shape, this.shape)) {
      throw new RangeError(`copy_: shape ${shapeToString(src.shape)} does not match ${shapeToString(this.shape)}`);
    }
    if (this.data instanceof BigInt64Array) {
      const dst = this.data;
      if (src.data instanceof BigInt64Array) dst.set(src.data);
      else src.data.forEach((v, i) => { dst[i] = BigInt(Math.round(v)); });
    } else if (src.data instanceof BigInt64Array) {
      const dst = this.data;
      src.data.forEach((v, i) => { dst[i] = Number(v); });
    } else {
      this.data.set(src.data);
    }
    return this.bumpVersion();
  }

  /**
   * Makes this tensor share `src`'s data (torch's Tensor.set_): same shape and dtype; no copy.
   * Whatever held this tensor (a module's parameter) now reads and writes src's memory.
   */
  set_(src: Tensor): this {
    if (!shapesEqual(src.shape, this.shape) || src.dtype !== this.dtype || src.isMeta !== this.isMeta) {
      throw new RangeError(
        `set_: ${src.dtype} tensor of shape ${shapeToString(src.shape)} cannot stand for ${this.dtype} ${shapeToString(this.shape)}`,
      );
    }
    (this as { data: TensorData }).data = src.data;
    // From now on both write the same data: one counter, moved on so that no cache of either
    // tensor's old values matches.
    this.#version = src.#version;
    return this.bumpVersion();
  }

  fill_(value: number): this {
    if (this.data instanceof BigInt64Array) this.data.fill(BigInt(value));
    else this.data.fill(value);
    return this.bumpVersion();
  }

  /** The single value of a one-element tensor, as a number. */
  item(): number {
    if (this.size !== 1) throw new RangeError(`item() needs a one-element tensor, got shape ${shapeToString(this.shape)}`);
    return Number(this.data[0]);
  }

  toString(): string {
    return `Tensor(${this.dtype}, ${shapeToString(this.shape)})`;
  }
}
