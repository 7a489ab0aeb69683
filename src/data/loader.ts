// torch's DataLoader for a map-style data set: batches of transformed samples collated into
// images (N, C, H, W) float32 and targets (N) int64, in a seeded shuffled order, with the next
// batches loaded while the current one is computed on.
//
// Reproducible: epoch e's order is a function of (seed, e) alone, and sample i's random
// transform draws from its own generator seeded by (seed, e, position), so the batches do not
// depend on how loading interleaves, and a run resumed at epoch e (setEpoch, or from a batch
// with `epochBatches(e, { start })`) sees the batches an uninterrupted run would.
//
// Ahead of the compute: while the caller works on batch k (the forward and backward run
// synchronously on the main thread; native and wasm threads under them), batches k+1 … k+prefetch
// are already requested: their files are read and decoded on libuv's threads (sharp), and their
// transforms run on the main thread whenever the caller awaits. Plain TypeScript, no Node APIs.

import { Tensor, shapeToString, shapesEqual } from '../core/tensor.js';
import { Generator } from '../core/rng.js';
import { permutation, type Dataset, type Sample } from './dataset.js';
import type { Image, Transform } from './transforms.js';

/** One batch: images (N, C, H, W) float32, class indices (N) int64, and the data set's indices of the samples. */
export interface Batch {
  images: Tensor;
  targets: Tensor;
  indices: Int32Array;
}

export interface DataLoaderOptions<X> {
  /** Samples per batch; 1 by default. */
  batchSize?: number;
  /** A new seeded order every epoch (true), or the data set's order (false, default). */
  shuffle?: boolean;
  /** Seed of the order and of the random transforms; 0 by default. */
  seed?: number;
  /** Drop the last batch when it would be smaller than batchSize. */
  dropLast?: boolean;
  /**
   * Applied to each sample's image after the data set's own transform; must give a float32
   * [C, H, W] tensor (ToTensor at the end). Without one the data set's images must be such tensors.
   */
  transform?: Transform<X, Tensor>;
  /** Batches requested ahead of the one being computed on; 2 by default (0: none). */
  prefetch?: number;
}

/** A 32-bit seed from several integers (splitmix32 steps over each): stream (seed, epoch, index) → seed. */
export function mixSeed(...parts: number[]): number {
  let h = 0x6a09e667;
  for (const part of parts) {
    h = (h ^ (part >>> 0)) >>> 0;
    h = (h + 0x9e3779b9) >>> 0;
    let z = h;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    h = (z ^ (z >>> 16)) >>> 0;
  }
  return h;
}

/** Stream tags, so the order's generator and the samples' never coincide. */
const ORDER_STREAM = 1;
const SAMPLE_STREAM = 2;

/** The images of one batch, all of one shape, as (N, C, H, W); the targets as int64 (N). */
export function collate(samples: readonly Sample<Tensor>[], indices: Int32Array): Batch {
  if (samples.length === 0) throw new RangeError('collate: an empty batch');
  const shape = samples[0].image.shape;
  const size = samples[0].image.size;
  const images = new Float32Array(samples.length * size);
  const targets = new BigInt64Array(samples.length);
  samples.forEach((s, i) => {
    const image = s.image;
    if (!(image instanceof Tensor) || image.dtype !== 'float32' || image.ndim !== 3) {
      throw new TypeError(`collate: sample ${indices[i]}'s image is not a float32 [C, H, W] tensor; end the transform with ToTensor`);
    }
    if (!shapesEqual(image.shape, shape)) {
      throw new RangeError(`collate: sample ${indices[i]} is ${shapeToString(image.shape)}, sample ${indices[0]} ${shapeToString(shape)}: a batch needs one size (crop or resize)`);
    }
    if (!Number.isInteger(s.target) || s.target < 0) throw new RangeError(`collate: sample ${indices[i]}'s target ${s.target} is not a class index`);
    images.set(image.f32, i * size);
    targets[i] = BigInt(s.target);
  });
  return { images: new Tensor(images, [samples.length, ...shape]), targets: new Tensor(targets, [samples.length]), indices };
}

export class DataLoader<X = Image> implements AsyncIterable<Batch> {
  readonly dataset: Dataset<X>;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly prefetch: number;
  readonly transform: Transform<X, Tensor> | null;
  #epoch = 0;

  constructor(dataset: Dataset<X>, options: DataLoaderOptions<X> = {}) {
    this.dataset = dataset;
    this.batchSize = options.batchSize ?? 1;
    this.shuffle = options.shuffle ?? false;
    this.seed = options.seed ?? 0;
    this.dropLast = options.dropLast ?? false;
    this.prefetch = options.prefetch ?? 2;
    this.transform = options.transform ?? null;
    if (!Number.isSafeInteger(this.batchSize) || this.batchSize < 1) throw new RangeError(`DataLoader: batchSize must be a positive integer, got ${this.batchSize}`);
    if (!Number.isSafeInteger(this.prefetch) || this.prefetch < 0) throw new RangeError(`DataLoader: prefetch must be a non-negative integer, got ${this.prefetch}`);
    if (!Number.isSafeInteger(this.seed)) throw new RangeError(`DataLoader: seed must be an integer, got ${this.seed}`);
  }

  /** Batches per epoch (torch's len(loader)). */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Class names of the data set, where it has them. */
  get classes(): readonly string[] | undefined {
    return this.dataset.classes;
  }

  /** The epoch the next `for await` iterates (each one moves it on by one, as torch's generator moves on). */
  get epoch(): number {
    return this.#epoch;
  }

  /** Makes the next iteration epoch `epoch` (DistributedSampler.set_epoch): a resumed run sets where it stopped. */
  setEpoch(epoch: number): void {
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`DataLoader: epoch must be a non-negative integer, got ${epoch}`);
    this.#epoch = epoch;
  }

  /** The order of the data set's indices in `epoch`: a seeded Fisher–Yates shuffle, or 0 … n−1. */
  order(epoch: number): Int32Array {
    const n = this.dataset.length;
    if (!this.shuffle) return Int32Array.from({ length: n }, (_, i) => i);
    return permutation(n, new Generator(mixSeed(this.seed, epoch, ORDER_STREAM)));
  }

  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    const epoch = this.#epoch;
    this.#epoch = epoch + 1;
    return this.epochBatches(epoch);
  }

  /** The batches of `epoch`, from batch `start` on (0 by default): resuming inside an epoch. */
  async *epochBatches(epoch: number, options: { start?: number } = {}): AsyncGenerator<Batch> {
    const order = this.order(epoch);
    const count = this.length;
    const start = options.start ?? 0;
    if (!Number.isSafeInteger(start) || start < 0 || start > count) throw new RangeError(`DataLoader: start batch ${start} is outside 0 … ${count}`);
    const pending: Promise<Batch>[] = [];
    let next = start;
    const request = (): void => {
      const k = next++;
      const promise = this.loadBatch(order.subarray(k * this.batchSize, Math.min((k + 1) * this.batchSize, order.length)), epoch, k * this.batchSize);
      promise.catch(() => {}); // its failure is thrown where it is awaited, not reported as unhandled meanwhile
      pending.push(promise);
    };
    while (next < count && pending.length < this.prefetch + 1) request();
    while (pending.length > 0) {
      const batch = await pending.shift()!;
      while (next < count && pending.length < this.prefetch + 1) request();
      yield batch;
    }
  }

  /** Loads, transforms and collates the samples at `indices`, which begin at `position` in the epoch's order. */
  private async loadBatch(indices: Int32Array, epoch: number, position: number): Promise<Batch> {
    await null; // let the caller go on: even a data set in memory is transformed when awaited, not when requested
    const samples = await Promise.all(Array.from(indices, async (index, i) => {
      const generator = new Generator(mixSeed(this.seed, epoch, position + i, SAMPLE_STREAM));
      const sample = await this.dataset.get(index, generator);
      const image = this.transform ? this.transform.apply(sample.image, generator) : (sample.image as unknown as Tensor);
      return { image, target: sample.target };
    }));
    return collate(samples, Int32Array.from(indices));
  }
}
