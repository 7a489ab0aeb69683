// The benchmark's browser row, inside Chromium: a module Web Worker of the page bench/browser.ts
// serves (bundled there by esbuild). It holds
// both engines on the same weights, resnet-ts on its wasm backend and onnxruntime-web's wasm
// build, checks each against our logits at the check input, and times slices of forward passes
// on request, so that the Node side can take the engines in turn as bench/run.ts does.
// A worker rather than the page: the wasm backend's calling thread blocks in Atomics.wait.

import { initWasmBackend, setBackend } from '../src/backends/index.js';
import { Tensor } from '../src/core/tensor.js';
import { readWeights } from '../src/io/weights.js';
import { getModel } from '../src/models/builders.js';
import type { AnyResNet } from '../src/models/builders.js';
import { benchmarkInput, timeRuns } from '../src/tools/bench.js';

type Onnxruntime = typeof import('onnxruntime-web');

/** The engines of the browser row. */
export type BrowserEngine = 'resnet-ts/wasm' | 'onnxruntime-web';

/** page → worker */
export type ToBenchWorker =
  | {
      type: 'setup';
      arch: string;
      threads: number;
      /** URLs of the weights (safetensors for us, ONNX for onnxruntime-web) and of onnxruntime-web's module. */
      safetensorsUrl: string;
      onnxUrl: string;
      ortUrl: string;
      /** The check input (N, 3, H, W), row-major. */
      check: { data: Float32Array; shape: number[] };
      /** The timed input's shape (batch 1). */
      shape: number[];
    }
  | { type: 'slice'; engine: BrowserEngine; warmup: number; minTimeMs: number; maxTimeMs: number; minIterations: number };

/** worker → page */
export type FromBenchWorker =
  | { type: 'ready'; logits: Record<BrowserEngine, Float32Array>; details: Record<BrowserEngine, Record<string, unknown>> }
  | { type: 'slice'; timesMs: number[] }
  | { type: 'error'; message: string };

interface Loaded {
  run: Record<BrowserEngine, () => Promise<Float32Array>>;
}

let loaded: Loaded | null = null;

async function fetchBytes(url: string): Promise<Uint8Array<ArrayBuffer>> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function setup(message: Extract<ToBenchWorker, { type: 'setup' }>): Promise<FromBenchWorker> {
  const ours = await initWasmBackend({ threads: message.threads });
  setBackend('wasm');
  const model: AnyResNet = getModel(message.arch);
  model.loadStateDict(readWeights(await fetchBytes(message.safetensorsUrl)));
  model.eval().requiresGrad_(false); // inference: no graph, the eval plan runs

  const ort = (await import(message.ortUrl)) as Onnxruntime;
  ort.env.wasm.numThreads = message.threads;
  const session = await ort.InferenceSession.create(await fetchBytes(message.onnxUrl), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const ortRun = async (x: Tensor) => {
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x.f32, x.shape) };
    return (await session.run(feeds))[session.outputNames[0]].data as Float32Array;
  };

  const check = new Tensor(message.check.data, message.check.shape);
  const logits = { 'resnet-ts/wasm': model.call(check).f32.slice(), 'onnxruntime-web': (await ortRun(check)).slice() };
  const x = benchmarkInput(message.shape);
  loaded = { run: { 'resnet-ts/wasm': async () => model.call(x).f32, 'onnxruntime-web': () => ortRun(x) } };
  return {
    type: 'ready',
    logits,
    details: {
      'resnet-ts/wasm': { backend: 'wasm', variant: ours.variant, isa: ours.isa, threads: ours.threads, crossOriginIsolated: self.crossOriginIsolated },
      // ort-web rewrites env.wasm.numThreads at init when threads are unavailable (e.g. to 1).
      'onnxruntime-web': { requestedNumThreads: message.threads, numThreadsAfterInit: ort.env.wasm.numThreads, proxy: ort.env.wasm.proxy ?? false, version: ort.env.versions.web },
    },
  };
}

async function handle(message: ToBenchWorker): Promise<FromBenchWorker> {
  switch (message.type) {
    case 'setup':
      return setup(message);
    case 'slice': {
      if (!loaded) throw new Error('slice before setup');
      const { timesMs } = await timeRuns(loaded.run[message.engine], message);
      return { type: 'slice', timesMs };
    }
  }
}

const scope = globalThis as unknown as { postMessage(message: FromBenchWorker): void; onmessage: ((event: MessageEvent<ToBenchWorker>) => void) | null };
scope.onmessage = (event) => {
  handle(event.data).then(
    (reply) => scope.postMessage(reply),
    (error: unknown) => scope.postMessage({ type: 'error', message: error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error) }),
  );
};
