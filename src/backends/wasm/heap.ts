// The allocator for the shared WebAssembly memory: a best-fit free list, kept sorted by
// address and coalesced on free, that grows the memory when nothing fits. Only the calling
// thread allocates; the kernels never do (kernels.h).

/** Every block starts on a 64-byte boundary (a cache line; any SIMD load is aligned). */
const ALIGN = 64;

const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

interface Block {
  start: number;
  size: number;
}

export class Heap {
  readonly #memory: WebAssembly.Memory;
  /** Free blocks, sorted by start, never adjacent (adjacent ones are merged). */
  readonly #free: Block[] = [];
  /** Size of each live block by its start. */
  readonly #live = new Map<number, number>();
  #liveBytes = 0;
  #buffer: ArrayBufferLike;

  /** Manages [base, end of memory) of `memory`; what lies below base belongs to the module. */
  constructor(memory: WebAssembly.Memory, base: number) {
    this.#memory = memory;
    this.#buffer = memory.buffer;
    const start = roundUp(base, ALIGN);
    if (start < this.#buffer.byteLength) this.#free.push({ start, size: this.#buffer.byteLength - start });
  }

  /** Bytes in live blocks. */
  get liveBytes(): number {
    return this.#liveBytes;
  }

  /** The current memory size in bytes. */
  get memoryBytes(): number {
    return this.#memory.buffer.byteLength;
  }

  /** Returns the address of a new block of at least `bytes` bytes (64-byte aligned, never 0). */
  alloc(bytes: number): number {
    const size = roundUp(Math.max(bytes, 1), ALIGN);
    let best = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const block = this.#free[i];
      if (block.size >= size && (best < 0 || block.size < this.#free[best].size)) best = i;
    }
    if (best < 0) best = this.#grow(size);
    const block = this.#free[best];
    const start = block.start;
    if (block.size === size) this.#free.splice(best, 1);
    else {
      block.start += size;
      block.size -= size;
    }
    this.#live.set(start, size);
    this.#liveBytes += size;
    return start;
  }

  /** The size of the live block at `start`, as allocated (rounded up). */
  sizeOf(start: number): number {
    const size = this.#live.get(start);
    if (size === undefined) throw new Error(`wasm heap: ${start} is not a live block`);
    return size;
  }

  free(start: number): void {
    const size = this.#live.get(start);
    if (size === undefined) throw new Error(`wasm heap: free of ${start}, which is not a live block`);
    this.#live.delete(start);
    this.#liveBytes -= size;
    // Insert in address order, then merge with the neighbours it touches.
    let i = 0;
    while (i < this.#free.length && this.#free[i].start < start) i++;
    this.#free.splice(i, 0, { start, size });
    const next = this.#free[i + 1];
    if (next && start + size === next.start) {
      this.#free[i].size += next.size;
      this.#free.splice(i + 1, 1);
    }
    const previous = this.#free[i - 1];
    if (previous && previous.start + previous.size === start) {
      previous.size += this.#free[i].size;
      this.#free.splice(i, 1);
    }
  }

  /** A float32 view of `length` floats at `start`, over the memory as it is now. */
  f32(start: number, length: number): Float32Array {
    return new Float32Array(this.#currentBuffer(), start, length);
  }

  f64(start: number, length: number): Float64Array {
    return new Float64Array(this.#currentBuffer(), start, length);
  }

  i32(start: number, length: number): Int32Array {
    return new Int32Array(this.#currentBuffer(), start, length);
  }

  /**
   * Grows the memory so that a free block of `size` bytes ends it; returns that block's index.
   * Grows by at least half the current size, so a run of allocations grows it rarely.
   */
  #grow(size: number): number {
    const end = this.#memory.buffer.byteLength;
    const last = this.#free[this.#free.length - 1];
    const tail = last && last.start + last.size === end ? last.size : 0;
    const needed = size - tail;
    const pages = Math.max(Math.ceil(needed / 65536), Math.ceil(end / 2 / 65536));
    try {
      this.#memory.grow(pages);
    } catch {
      try {
        this.#memory.grow(Math.ceil(needed / 65536));
      } catch {
        throw new RangeError(
          `wasm backend: out of memory allocating ${(size / 2 ** 20).toFixed(1)} MiB ` +
            `(${(this.#liveBytes / 2 ** 20).toFixed(1)} MiB live of ${(end / 2 ** 20).toFixed(0)} MiB)`,
        );
      }
    }
    const grown = this.#memory.buffer.byteLength - end;
    if (tail) last.size += grown;
    else this.#free.push({ start: end, size: grown });
    return this.#free.length - 1;
  }

  /** memory.buffer changes identity when the memory grows; views made before stay valid. */
  #currentBuffer(): ArrayBufferLike {
    if (this.#buffer.byteLength !== this.#memory.buffer.byteLength) this.#buffer = this.#memory.buffer;
    return this.#buffer;
  }
}
