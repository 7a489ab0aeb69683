// The thread pool of the wasm backend: worker threads that run slices of kernel jobs on the
// one shared memory. A job is published through a control block in that memory and split
// into `nthreads` slices (the kernels' (tid, nthreads)); every thread, the calling one
// included, claims slices by compare-and-swap on a ticket counter until none is left, so the
// caller never waits for a worker that is slow to wake, still starting, or missing. The pool
// knows nothing about ops: a job is a kernel index and its int32 arguments (kernels.ts).
//
// The worker boundary is the message union below, handled in one switch on each side; the
// platform starts the threads (Node's worker_threads, or Web Workers) and the pool is handed
// its spawner, so that this module stays free of platform code (a browser's worker bundle
// holds it). Messages only start workers; jobs never travel as messages (a worker blocks in
// Atomics.wait between jobs).

import type { ThreadPort } from '../../platform/types.js';
import { callKernel, MAX_KERNEL_ARGS, type KernelExports } from './kernels.js';

/** main → worker */
export type ToWorker = {
  type: 'start';
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** Byte address of the control block. */
  control: number;
  /** This worker's index among the pool's threads (1, 2, ...; the calling thread is 0). */
  index: number;
  /** High end of this worker's stack. */
  stackTop: number;
};

/** worker → main */
export type FromWorker = { type: 'ready' } | { type: 'failed'; message: string };

// The control block: int32 words. STATE and DONE sit on cache lines of their own, since every
// thread hammers them; the job description is written once per job and then only read.
/** (generation << TICKET_BITS) | next unclaimed slice; see ThreadPool.run(). */
const STATE = 0;
/** Slices finished in the current job. */
const DONE = 16;
const KERNEL = 32;
const SLICES = 33;
/** Set when a slice threw (a trap); the caller rethrows once the job is over. */
const FAILED = 34;
/** Set by dispose(): workers leave their loop. */
const STOP = 35;
/** Slices run by worker threads since the start (for tests and stats). */
const WORKER_SLICES = 36;
const ARGS = 48;
export const CONTROL_BYTES = (ARGS + MAX_KERNEL_ARGS) * 4;

const TICKET_BITS = 10;
const TICKET_MASK = (1 << TICKET_BITS) - 1;
/** A ticket no job reaches: the state of a job being written, which nobody may claim. */
const CLOSED = TICKET_MASK;
const GENERATION_MASK = (1 << (32 - TICKET_BITS)) - 1;
export const MAX_THREADS = CLOSED - 1;

/** Loads of STATE a worker spins through before sleeping (tens of µs: ops follow each other closely). */
const WORKER_SPIN = 1 << 15;
/** Loads of DONE the caller spins through before sleeping. */
const CALLER_SPIN = 1 << 12;

/**
 * Claims and runs slices of job `generation` until none is left; returns how many this
 * thread ran. A successful compare-and-swap from `state` proves the job is still the current
 * one and cannot finish before this slice does, so its description is stable while we read it.
 */
export function runSlices(control: Int32Array, args: Int32Array, kernels: KernelExports, generation: number, thread: number): number {
  let ran = 0;
  for (;;) {
    const state = Atomics.load(control, STATE);
    if (state >>> TICKET_BITS !== generation) return ran;
    const slice = state & TICKET_MASK;
    const slices = control[SLICES];
    if (slice >= slices) return ran;
    if (Atomics.compareExchange(control, STATE, state, state + 1) !== state) continue;
    try {
      callKernel(kernels, control[KERNEL], args, slice, slices, thread);
    } catch {
      Atomics.store(control, FAILED, 1);
    }
    ran++;
    if (Atomics.add(control, DONE, 1) + 1 === slices) Atomics.notify(control, DONE);
  }
}

/** The control block at byte `address` of `memory`, and its argument words. */
function controlViews(memory: WebAssembly.Memory, address: number): { control: Int32Array; args: Int32Array } {
  const control = new Int32Array(memory.buffer, address, CONTROL_BYTES / 4);
  return { control, args: control.subarray(ARGS, ARGS + MAX_KERNEL_ARGS) };
}

/** A worker's life after 'start': run whatever is published at `address` until STOP. */
export function workerLoop(memory: WebAssembly.Memory, address: number, kernels: KernelExports, thread: number): void {
  const { control, args } = controlViews(memory, address);
  while (!Atomics.load(control, STOP)) {
    const state = Atomics.load(control, STATE);
    const ran = runSlices(control, args, kernels, state >>> TICKET_BITS, thread);
    if (ran) Atomics.add(control, WORKER_SLICES, ran);
    // Nothing left to claim: spin briefly (the next op usually follows within microseconds),
    // then sleep until the state word changes.
    const seen = Atomics.load(control, STATE);
    let spin = WORKER_SPIN;
    while (spin-- > 0 && Atomics.load(control, STATE) === seen);
    if (spin < 0) Atomics.wait(control, STATE, seen);
  }
}

export class ThreadPool {
  readonly #control: Int32Array;
  readonly #args: Int32Array;
  readonly #kernels: KernelExports;
  readonly #threads: ThreadPort[] = [];
  readonly #canBlock: boolean;
  #generation = 0;
  #ready = 0;
  #failure: string | null = null;
  #waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  /**
   * `control` is a CONTROL_BYTES block of `memory` (zeroed); `stacks` has one stack top per
   * worker, so the pool has stacks.length + 1 threads, the calling one included. `spawn` starts
   * a thread running worker.ts; `canBlock` says whether the calling thread may Atomics.wait.
   */
  constructor(
    module: WebAssembly.Module, memory: WebAssembly.Memory, control: number, kernels: KernelExports, stacks: number[],
    spawn: (onMessage: (message: unknown) => void, onError: (message: string) => void) => ThreadPort, canBlock: boolean,
  ) {
    ({ control: this.#control, args: this.#args } = controlViews(memory, control));
    this.#kernels = kernels;
    this.#canBlock = canBlock;
    for (const [i, stackTop] of stacks.entries()) {
      const thread = spawn(
        (message) => this.#onMessage(message as FromWorker),
        (message) => this.#onMessage({ type: 'failed', message }),
      );
      thread.post({ type: 'start', module, memory, control, index: i + 1, stackTop });
      this.#threads.push(thread);
    }
  }

  /** Threads that run slices, the calling one included. */
  get size(): number {
    return this.#threads.length + 1;
  }

  /** Slices run by workers so far: proof that they take part. */
  get workerSlices(): number {
    return Atomics.load(this.#control, WORKER_SLICES);
  }

  /** Resolves once every worker has instantiated the module (jobs run before that anyway). */
  whenReady(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      for (const thread of this.#threads) thread.keepAlive(true);
      this.#settle();
    });
  }

  #onMessage(message: FromWorker): void {
    switch (message.type) {
      case 'ready':
        this.#ready++;
        break;
      case 'failed':
        this.#failure ??= `wasm worker failed: ${message.message}`;
        break;
    }
    this.#settle();
  }

  #settle(): void {
    if (!this.#failure && this.#ready < this.#threads.length) return;
    for (const thread of this.#threads) thread.keepAlive(false);
    for (const waiter of this.#waiters.splice(0)) {
      if (this.#failure) waiter.reject(new Error(this.#failure));
      else waiter.resolve();
    }
  }

  /**
   * Runs `kernel` with `args` as `slices` slices (1 or more; more than size where slices are
   * small parts of one pass, so that a thread slowed by a busy core takes fewer) and returns
   * when all are done. The calling thread takes part; with one slice it runs alone and wakes
   * nobody.
   */
  run(kernel: number, args: readonly number[], slices: number): void {
    const control = this.#control;
    if (slices <= 1) {
      this.#args.set(args);
      callKernel(this.#kernels, kernel, this.#args, 0, 1, 0);
      return;
    }
    const generation = (this.#generation + 1) & GENERATION_MASK;
    // Close the state first: a worker still looking at the last job must not claim a ticket
    // of this one while its description is half written.
    Atomics.store(control, STATE, (generation << TICKET_BITS) | CLOSED);
    control[KERNEL] = kernel;
    control[SLICES] = slices;
    control[FAILED] = 0;
    this.#args.set(args);
    Atomics.store(control, DONE, 0);
    Atomics.store(control, STATE, generation << TICKET_BITS);
    this.#generation = generation;
    Atomics.notify(control, STATE, Math.min(slices, this.size) - 1);
    runSlices(control, this.#args, this.#kernels, generation, 0);
    let spin = CALLER_SPIN;
    for (let done = Atomics.load(control, DONE); done < slices; done = Atomics.load(control, DONE)) {
      if (spin > 0) spin--;
      else if (this.#canBlock) Atomics.wait(control, DONE, done);
    }
    if (control[FAILED]) throw new Error(`wasm kernel ${kernel} trapped (a slice of it failed on some thread)`);
  }

  /** Stops the workers; the pool runs single-threaded afterwards. */
  dispose(): void {
    const control = this.#control;
    Atomics.store(control, STOP, 1);
    Atomics.store(control, STATE, (((this.#generation + 1) & GENERATION_MASK) << TICKET_BITS) | CLOSED);
    Atomics.notify(control, STATE);
    for (const thread of this.#threads.splice(0)) thread.terminate();
  }
}
