// The engines a benchmark can time, behind one small interface: resnet-ts on any registered
// backend, and the peers (onnxruntime-node on its CPU execution provider, onnxruntime-web's
// WebAssembly build and TensorFlow.js with tfjs-backend-wasm, both run inside Node; PyTorch
// runs in a Python worker instead, bench/torch_worker.py). Each one loads the same weights from
// bench/models (written by bench/export_onnx.py), takes an NCHW float32 input once, outside the
// timed runs, and returns the logits of each run.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Tensor } from '../src/core/tensor.js';
import { getModel } from '../src/models/builders.js';
import { ResNet } from '../src/models/resnet.js';
import { useBackend } from '../src/tools/bench.js';
import { OURS_PREFIX, onnxruntimeNodeOptions, parseOurs } from './engine_setup.js';
import { buildTfResNet } from './tfjs_resnet.js';

export { OURS_PREFIX };

/** The peers, in the report's column order; 'pytorch' runs in Python (bench/torch_worker.py), the others here. */
export const PEERS = ['onnxruntime-node', 'onnxruntime-web', 'tfjs-wasm', 'pytorch'] as const;
export type PeerName = (typeof PEERS)[number];

export interface EngineSpec {
  /** 'resnet-ts/<backend>[@<isa>]' (engine_setup.ts's parseOurs) or one of PEERS. */
  engine: string;
  arch: string;
  threads: number;
  modelsDir: string;
}

export interface Engine {
  /** Sets the input for the following runs: x (N, 3, H, W) float32, row-major. */
  setInput(x: Float32Array, shape: readonly number[]): Promise<void>;
  /** One forward pass on the input set last: logits (N, classes), row-major. */
  run(): Promise<Float32Array>;
  /** What actually ran: versions, providers, thread settings as the library reports them. */
  details(): Promise<Record<string, unknown>>;
}

/**
 * bench/models/<arch>.<kind>: 'onnx', 'safetensors', 'pth', 'check.safetensors' (export_onnx.py),
 * 'reference.safetensors' (ours), 'image.f32' (the cold start's input, bench/run.ts).
 */
export function modelFile(modelsDir: string, arch: string, kind: string): string {
  return join(modelsDir, `${arch}.${kind}`);
}

/** Our logits at the check input (reference backend), which every engine's are compared with. */
export const referencePath = (modelsDir: string, arch: string) => modelFile(modelsDir, arch, 'reference.safetensors');

/** max|a − b| / max|reference|: the agreement measure every engine is held to (torch_worker.py has its twin). */
export function relativeDifference(a: ArrayLike<number>, reference: ArrayLike<number>): number {
  if (a.length !== reference.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - reference[i]));
    scale = Math.max(scale, Math.abs(reference[i]));
  }
  return Number.isNaN(diff) ? Infinity : diff / scale;
}

const require = createRequire(import.meta.url);

/** The installed version of an npm package, from its package.json (found by path: not every package exports it). */
export function packageVersion(name: string): string | null {
  for (const dir of require.resolve.paths(name) ?? []) {
    try {
      return (JSON.parse(readFileSync(join(dir, name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      // not in this node_modules
    }
  }
  return null;
}

/** Our model with the benchmark weights loaded as a user loads a weights file (the builder's `weights`), in eval mode. */
export async function loadOurModel(arch: string, modelsDir: string): Promise<ResNet> {
  const model = await getModel(arch, { weights: modelFile(modelsDir, arch, 'safetensors') });
  if (!(model instanceof ResNet)) throw new TypeError(`the benchmark times torchvision's ResNets, not ${arch}`);
  model.eval().requiresGrad_(false); // inference: no graph, the eval plan runs
  return model;
}

async function createOurs(spec: EngineSpec, backendName: string): Promise<Engine> {
  const model = await loadOurModel(spec.arch, spec.modelsDir);
  const { backend, threads, threadsSupported, isa } = useBackend(backendName, spec.threads);
  // The native backend also lists the ISAs this CPU can run (RESNET_NATIVE_ISA picks among them).
  const isas = (backend as { isas?: () => string[] }).isas?.();
  let x: Tensor | null = null;
  return {
    setInput: async (data, shape) => {
      x = new Tensor(data, shape);
    },
    run: async () => model.call(x!).f32,
    details: async () => ({
      backend: backendName,
      isa,
      ...(isas ? { isas } : {}),
      threads,
      threadsSupported,
      ...(threadsSupported ? {} : { note: 'the backend has no thread control: single-threaded' }),
    }),
  };
}

/** onnxruntime's JavaScript API (onnxruntime-common), the same in its node and web packages. */
type Onnxruntime = Pick<typeof import('onnxruntime-node'), 'InferenceSession' | 'Tensor'>;
type SessionOptions = Parameters<Onnxruntime['InferenceSession']['create']>[1];

async function onnxruntimeEngine(ort: Onnxruntime, spec: EngineSpec, options: SessionOptions, details: () => Record<string, unknown>): Promise<Engine> {
  const session = await ort.InferenceSession.create(modelFile(spec.modelsDir, spec.arch, 'onnx'), options);
  let feeds: Record<string, InstanceType<Onnxruntime['Tensor']>> = {};
  return {
    setInput: async (data, shape) => {
      feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, shape) };
    },
    run: async () => (await session.run(feeds))[session.outputNames[0]].data as Float32Array,
    details: async () => ({ ...options, ...details() }),
  };
}

async function createOnnxruntimeNode(spec: EngineSpec): Promise<Engine> {
  return onnxruntimeEngine(await import('onnxruntime-node'), spec, onnxruntimeNodeOptions(spec.threads), () => ({ version: packageVersion('onnxruntime-node') }));
}

async function createOnnxruntimeWeb(spec: EngineSpec): Promise<Engine> {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = spec.threads;
  const options = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' } as const;
  return onnxruntimeEngine(ort, spec, options, () => ({
    version: packageVersion('onnxruntime-web'),
    requestedNumThreads: spec.threads,
    // ort-web rewrites env.wasm.numThreads at init when threads are unavailable (e.g. to 1).
    numThreadsAfterInit: ort.env.wasm.numThreads,
    proxy: ort.env.wasm.proxy ?? false,
  }));
}

/** (N, C, H, W) → (N, H, W, C). */
function nchwToNhwc(x: Float32Array, [n, c, h, w]: readonly number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < h * w; p++) out[(b * h * w + p) * c + ch] = x[(b * c + ch) * h * w + p];
    }
  }
  return out;
}

async function createTfjsWasm(spec: EngineSpec): Promise<Engine> {
  const tf = await import('@tensorflow/tfjs-core');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  // Only takes effect where the threaded build can load; in Node it cannot (see details()).
  wasm.setThreadsCount(spec.threads);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs: the wasm backend did not initialise');
  await tf.ready();
  const graph = buildTfResNet(tf, await loadOurModel(spec.arch, spec.modelsDir));
  let x: InstanceType<typeof tf.Tensor> | null = null;
  return {
    setInput: async (data, shape) => {
      x?.dispose();
      x = tf.tensor4d(nchwToNhwc(data, shape), [shape[0], shape[2], shape[3], shape[1]]);
    },
    run: async () => {
      const y = graph.predict(x as Parameters<typeof graph.predict>[0]);
      const data = (await y.data()) as Float32Array;
      y.dispose();
      return data;
    },
    details: async () => ({
      version: packageVersion('@tensorflow/tfjs-backend-wasm'),
      backend: tf.getBackend(),
      requestedThreads: spec.threads,
      threadsCount: wasm.getThreadsCount(),
      multithreadSupport: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'),
      simdSupport: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
      layout: 'NHWC, BatchNorm folded into the convolutions',
    }),
  };
}

export async function createEngine(spec: EngineSpec): Promise<Engine> {
  const ours = parseOurs(spec.engine);
  if (ours) return createOurs(spec, ours.backend);
  switch (spec.engine as PeerName) {
    case 'onnxruntime-node':
      return createOnnxruntimeNode(spec);
    case 'onnxruntime-web':
      return createOnnxruntimeWeb(spec);
    case 'tfjs-wasm':
      return createTfjsWasm(spec);
    case 'pytorch':
      throw new Error('pytorch runs in bench/torch_worker.py, not in a Node worker');
    default:
      throw new Error(`unknown engine '${spec.engine}' (${OURS_PREFIX}<backend>[@<isa>] or one of ${PEERS.join(', ')})`);
  }
}
