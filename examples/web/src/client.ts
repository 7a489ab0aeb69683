// The page's side of the model worker: requests as promises, replies matched by id.

import type { Reply, Request } from './protocol.js';

type Distribute<T> = T extends unknown ? Omit<T, 'id'> : never;
type Body = Distribute<Request>;
type Progress = Extract<Reply, { type: 'progress' }>;

export class ModelClient {
  readonly #worker = new Worker(new URL('./model-worker.ts', import.meta.url), { type: 'module' });
  readonly #pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void; onProgress?: (p: Progress) => void }>();
  #nextId = 1;

  constructor() {
    this.#worker.onmessage = (event: MessageEvent<Reply>) => this.#receive(event.data);
    // A worker that cannot load has no message to give; say what failed.
    this.#worker.onerror = (event) => this.#failAll(new Error(`the model worker failed: ${event.message || 'it did not load'}`));
  }

  /** Sends a request; resolves with its reply, rejects with the worker's error. */
  call<T extends Reply['type']>(body: Body, onProgress?: (p: Progress) => void): Promise<Extract<Reply, { type: T }>> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (reply: Reply) => void, reject, onProgress });
      this.#worker.postMessage({ ...body, id } as Request);
    });
  }

  #receive(reply: Reply): void {
    const waiter = this.#pending.get(reply.id);
    if (!waiter) return;
    switch (reply.type) {
      case 'progress':
        waiter.onProgress?.(reply);
        return;
      case 'error':
        this.#pending.delete(reply.id);
        waiter.reject(new Error(reply.message));
        return;
      default:
        this.#pending.delete(reply.id);
        waiter.resolve(reply);
    }
  }

  #failAll(error: Error): void {
    for (const waiter of this.#pending.values()) waiter.reject(error);
    this.#pending.clear();
  }
}
