// Runs a model off the main thread: `serveModelWorker()` in a worker's script, `ModelWorker` on
// the page. A forward pass on the wasm backend blocks its thread (the kernels' threads are
// joined with Atomics.wait, which a page's main thread may not do, so it spins there); in a Web
// Worker it sleeps, and the page stays responsive. The boundary is the message union below,
// handled in one switch on each side, over a Web Worker or Node's worker_threads alike.

import { Tensor } from '../core/tensor.js';
import { getBackend, setBackend } from '../backends/backend.js';
import { initWasmBackend } from '../backends/wasm/index.js';
import { getModel, type ModelName } from '../models/builders.js';
import type { ResNetOptions } from '../models/resnet.js';
import type { AnyResNet } from '../models/builders.js';
import type { WeightsSpec } from '../weights/load.js';
import { imagePixels, type ImageSource } from '../preprocess/source.js';
import { ImageClassification, type ImageClassificationOptions } from '../preprocess/transforms.js';

/** A tensor as it crosses the boundary (its buffer is transferred, not copied). */
export interface TensorMessage {
  data: Float32Array;
  shape: number[];
}

/** What to run: an architecture, its options, weights, and the backend. */
export interface ModelSpec {
  arch: ModelName;
  /** The builder's options (numClasses, seed, ...). */
  options?: ResNetOptions;
  /** Anything the builders' `weights` takes that can be posted: a weights name, a URL, a descriptor, a file's bytes or a File. */
  weights?: WeightsSpec | null;
  /** 'auto' (default): the wasm backend, started without blocking, or what `auto` picks if it cannot start. */
  backend?: string;
  /** Threads of the wasm backend; default: the cores. */
  threads?: number;
}

/** page → worker */
export type ToModelWorker =
  | { type: 'load'; id: number; spec: ModelSpec }
  | { type: 'forward'; id: number; input: TensorMessage; capture: string[] }
  | { type: 'classify'; id: number; image: ImageSource; preprocess: ImageClassificationOptions; capture: string[] };

/** worker → page */
export type FromModelWorker =
  | { type: 'loaded'; id: number; backend: string; threads: number; parameters: number }
  | { type: 'progress'; id: number; loaded: number; total: number | undefined }
  | { type: 'output'; id: number; input: TensorMessage | null; output: TensorMessage; captured: Record<string, TensorMessage>; milliseconds: number }
  | { type: 'error'; id: number; name: string; message: string };

/** What both sides need of the other end: a Web Worker, its global scope, or a worker_threads Worker or parentPort. */
export interface MessageEndpoint {
  // Loosely typed, so that the DOM's and Node's declarations of these methods both fit.
  postMessage(message: unknown, transfer?: any[]): void;
  addEventListener?(type: 'message', listener: (event: any) => void): void;
  on?(event: 'message', listener: (data: any) => void): unknown;
}

/** The one adapter: Node's on('message', data), or the DOM's addEventListener('message', event). */
function listen(endpoint: MessageEndpoint, handler: (data: unknown) => void): void {
  if (typeof endpoint.on === 'function') endpoint.on('message', handler);
  else if (typeof endpoint.addEventListener === 'function') endpoint.addEventListener('message', (event) => handler(event.data));
  else throw new TypeError('not a worker endpoint: it has neither on() nor addEventListener()');
}

function toMessage(t: Tensor): TensorMessage {
  // A copy the other side owns: the tensor's data may be a view of wasm memory.
  return { data: t.f32.slice(), shape: [...t.shape] };
}

/**
 * Serves models to the page in a worker's script: `serveModelWorker()` in a Web Worker (or
 * `serveModelWorker(parentPort)` under worker_threads). One model at a time; requests run in order.
 */
export function serveModelWorker(endpoint: MessageEndpoint = globalThis as unknown as MessageEndpoint): void {
  let model: AnyResNet | null = null;
  const post = (message: FromModelWorker, transfer: Transferable[] = []): void => endpoint.postMessage(message, transfer);
  const buffers = (...tensors: (TensorMessage | null)[]): Transferable[] => tensors.flatMap((t) => (t ? [t.data.buffer as ArrayBuffer] : []));

  const run = (id: number, input: Tensor, capture: string[], sendInput: boolean): void => {
    if (!model) throw new Error("no model: send 'load' first");
    const modules = new Map(model.namedModules());
    const captured: Record<string, TensorMessage> = {};
    const removers = capture.map((name) => {
      const module = modules.get(name);
      if (!module) throw new RangeError(`the model has no module '${name}'`);
      return module.registerForwardHook((_module, _input, output) => void (captured[name] = toMessage(output)));
    });
    try {
      const start = performance.now();
      const output = toMessage(model.forward(input));
      const milliseconds = performance.now() - start;
      const inputMessage = sendInput ? toMessage(input) : null;
      post({ type: 'output', id, input: inputMessage, output, captured, milliseconds }, buffers(output, inputMessage, ...Object.values(captured)));
    } finally {
      for (const remove of removers) remove();
    }
  };

  const handle = async (message: ToModelWorker): Promise<void> => {
    switch (message.type) {
      case 'load': {
        const { arch, options = {}, weights, backend = 'auto', threads } = message.spec;
        if (backend === 'wasm' || backend === 'auto') {
          try {
            await initWasmBackend({ threads });
          } catch (error) {
            if (backend === 'wasm') throw error;
          }
        }
        setBackend(backend);
        const progress = (loaded: number, total: number | undefined): void => post({ type: 'progress', id: message.id, loaded, total });
        model = weights ? await getModel(arch, { ...options, weights, progress }) : getModel(arch, options);
        model.eval().requiresGrad_(false); // inference only: no graph, the eval plan runs
        const active = getBackend() as { name: string; getThreads?: () => number };
        post({ type: 'loaded', id: message.id, backend: active.name, threads: active.getThreads?.() ?? 1, parameters: model.parameterCount() });
        break;
      }
      case 'forward':
        run(message.id, new Tensor(message.input.data, message.input.shape), message.capture, false);
        break;
      case 'classify': {
        const input = new ImageClassification(message.preprocess).forward(await imagePixels(message.image));
        run(message.id, input, message.capture, true);
        break;
      }
    }
  };

  // Requests run one after another, in the order they came.
  let queue = Promise.resolve();
  listen(endpoint, (data) => {
    const message = data as ToModelWorker;
    queue = queue.then(() =>
      handle(message).catch((error: unknown) => {
        const e = error instanceof Error ? error : new Error(String(error));
        post({ type: 'error', id: message.id, name: e.name, message: e.message });
      }),
    );
  });
}

/** What a forward pass in the worker gives back. */
export interface WorkerResult {
  output: Tensor;
  /** The outputs of the modules named in `capture`, by name. */
  captured: Map<string, Tensor>;
  /** The preprocessed input (classify only). */
  input: Tensor | null;
  /** The forward pass alone, measured in the worker. */
  milliseconds: number;
}

/** The page's side of serveModelWorker: each method posts a request and resolves with its answer. */
export class ModelWorker {
  readonly #endpoint: MessageEndpoint & { terminate?: () => unknown };
  readonly #pending = new Map<number, { resolve: (message: FromModelWorker) => void; reject: (error: Error) => void; progress?: (loaded: number, total: number | undefined) => void }>();
  #nextId = 1;
  #failure: Error | null = null;

  /** `worker`: a Web Worker (or worker_threads Worker) whose script calls serveModelWorker(). */
  constructor(worker: MessageEndpoint & { terminate?: () => unknown }) {
    this.#endpoint = worker;
    listen(worker, (data) => this.#onMessage(data as FromModelWorker));
    const onError = (error: unknown): void => this.#fail(error);
    const target = worker as { addEventListener?: (type: string, listener: (event: ErrorEvent) => void) => void; on?: (event: string, listener: (error: Error) => void) => void };
    if (typeof target.on === 'function') target.on('error', onError);
    else target.addEventListener?.('error', (event) => {
      event.preventDefault?.();
      // A worker script that fails to load raises an ErrorEvent without a message.
      onError(new Error(event.message || 'the model worker failed to start (its script did not load: check the URL and that it is served as JavaScript)'));
    });
  }

  #fail(error: unknown): void {
    this.#failure = error instanceof Error ? error : new Error(String(error));
    for (const waiter of this.#pending.values()) waiter.reject(this.#failure);
    this.#pending.clear();
  }

  #onMessage(message: FromModelWorker): void {
    const waiter = this.#pending.get(message.id);
    if (!waiter) return;
    if (message.type === 'progress') return void waiter.progress?.(message.loaded, message.total);
    this.#pending.delete(message.id);
    if (message.type === 'error') {
      const error = new Error(message.message);
      error.name = message.name;
      waiter.reject(error);
    } else waiter.resolve(message);
  }

  #request(message: ToModelWorker, transfer: Transferable[] = [], progress?: (loaded: number, total: number | undefined) => void): Promise<FromModelWorker> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#pending.set(message.id, { resolve, reject, progress });
      this.#endpoint.postMessage(message, transfer);
    });
  }

  /** Builds the model in the worker (downloading its weights there, with `onProgress`); resolves with the backend that runs it. */
  async load(spec: ModelSpec, onProgress?: (loaded: number, total: number | undefined) => void): Promise<{ backend: string; threads: number; parameters: number }> {
    const answer = (await this.#request({ type: 'load', id: this.#nextId++, spec }, [], onProgress)) as Extract<FromModelWorker, { type: 'loaded' }>;
    return { backend: answer.backend, threads: answer.threads, parameters: answer.parameters };
  }

  /** model.forward(input) in the worker, and the outputs of the modules named in `capture` (e.g. 'layer1', 'layer4.1.conv2'). */
  async forward(input: Tensor, options: { capture?: string[] } = {}): Promise<WorkerResult> {
    const message: TensorMessage = { data: input.f32.slice(), shape: [...input.shape] };
    return this.#result(await this.#request({ type: 'forward', id: this.#nextId++, input: message, capture: options.capture ?? [] }, [message.data.buffer as ArrayBuffer]));
  }

  /** Preprocesses an image in the worker (torchvision's ImageClassification) and runs the model on it. */
  async classify(image: ImageSource, options: ImageClassificationOptions & { capture?: string[] } = {}): Promise<WorkerResult> {
    const { capture = [], ...preprocess } = options;
    return this.#result(await this.#request({ type: 'classify', id: this.#nextId++, image, preprocess, capture }));
  }

  #result(answer: FromModelWorker): WorkerResult {
    const message = answer as Extract<FromModelWorker, { type: 'output' }>;
    const tensor = (t: TensorMessage): Tensor => new Tensor(t.data, t.shape);
    return {
      output: tensor(message.output),
      captured: new Map(Object.entries(message.captured).map(([name, t]) => [name, tensor(t)])),
      input: message.input ? tensor(message.input) : null,
      milliseconds: message.milliseconds,
    };
  }

  /** Stops the worker; pending requests reject. */
  terminate(): void {
    this.#fail(new Error('the model worker was terminated'));
    this.#endpoint.terminate?.();
  }
}
