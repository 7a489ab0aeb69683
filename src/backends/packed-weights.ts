// The packed-weight cache of the backends built on csrc/kernels.h (native and wasm): the copies
// of a weight their kernels read (rk_conv2d_pack's panels or Winograd U, a linear weight moved
// into wasm memory), one per weight tensor and key (kernel-abi.ts's packingKey: layout and
// geometry, so a model run at two input sizes keeps both packings instead of packing again at
// every switch), valid while the tensor keeps its version (Tensor.version: every in-place write
// bumps it, however small) and is packed with the same scale (ConvEpilogue.scale, BatchNorm
// folded in: the fold cache hands out one array per version of the BatchNorm's tensors).
// Past `limitBytes` the least recently used packings are dropped; a packing goes with its weight
// tensor when that is collected. The storage is the backend's: native keeps Float32Arrays, wasm
// addresses in its heap, freed by `free`.

import type { Tensor } from '../core/tensor.js';

interface Entry<T> {
  key: string;
  data: T;
  bytes: number;
  /** The weight's version when it was packed. */
  version: number;
  /** The scale folded in when it was packed. */
  scale: Float64Array | null;
}

export class PackedWeights<T> {
  /** Packings by weight tensor: one entry per key. */
  readonly #byWeight = new WeakMap<Tensor, Entry<T>[]>();
  /** Every packing, least recently used first, with the list of its weight. */
  readonly #byUse = new Map<Entry<T>, Entry<T>[]>();
  readonly #collected = new FinalizationRegistry<Entry<T>[]>((entries) => {
    for (const entry of [...entries]) this.#drop(entry, entries);
  });
  readonly #limitBytes: number;
  readonly #free: (data: T) => void;
  #bytes = 0;

  /** `free` releases a dropped packing's storage (nothing to do where the collector does it). */
  constructor(limitBytes: number, free: (data: T) => void = () => {}) {
    this.#limitBytes = limitBytes;
    this.#free = free;
  }

  /** Bytes of the packings held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * `weight` packed for `key` with `scale` folded in: the cached packing, or a new one. A miss
   * makes room (least recently used first), takes storage of `bytes` from `alloc` and lets `pack`
   * fill it; a stale entry (the weight written in place since, or another scale) is packed
   * again into its own storage, whose size the key fixes.
   */
  get(weight: Tensor, key: string, bytes: number, scale: Float64Array | null, alloc: () => T, pack: (data: T) => void): T {
    let entries = this.#byWeight.get(weight);
    if (!entries) {
      entries = [];
      this.#byWeight.set(weight, entries);
      this.#collected.register(weight, entries);
    }
    const version = weight.version;
    let entry = entries.find((e) => e.key === key);
    if (entry) {
      this.#byUse.delete(entry); // most recently used goes last
      this.#byUse.set(entry, entries);
      if (entry.version === version && entry.scale === scale) return entry.data;
    } else {
      for (const [old, owner] of this.#byUse) {
        if (this.#bytes + bytes <= this.#limitBytes) break;
        this.#drop(old, owner);
      }
      // Version -1 until packed: a pack that throws leaves it stale, never half-written and valid.
      entry = { key, data: alloc(), bytes, version: -1, scale };
      entries.push(entry);
      this.#byUse.set(entry, entries);
      this.#bytes += bytes;
    }
    pack(entry.data);
    entry.version = version;
    entry.scale = scale;
    return entry.data;
  }

  #drop(entry: Entry<T>, owner: Entry<T>[]): void {
    owner.splice(owner.indexOf(entry), 1);
    this.#byUse.delete(entry);
    this.#bytes -= entry.bytes;
    this.#free(entry.data);
  }
}
