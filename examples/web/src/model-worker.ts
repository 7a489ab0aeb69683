// The model, in a Web Worker of its own, so that the page stays responsive during a forward
// pass: the wasm backend's kernels block their calling thread until every slice is done,
// which a browser allows in a worker and not on the page's thread. Builds the model, loads
// weights, preprocesses and classifies images, and reads any layer's output for the diagram's
// activation maps. Messages: protocol.ts.

import {
  drawDiagram, extractFeatures, getModel, getModelWeights, IMAGENET_CATEGORIES, ImageClassification, init, initWasmBackend, readWeights, setBackend, summarize, toTensor, type ResNet, type Tensor,
} from 'resnet-ts';
import relaxedUrl from '../../../wasm/kernels.wasm?url';
import simdUrl from '../../../wasm/kernels-simd.wasm?url';
import type { Reply, Request, Rgba } from './protocol.js';
import { fetchWeights } from './weights.js';

const post = (reply: Reply, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(reply, transfer);

let model: ResNet | null = null;
let arch = '';
let weightsLoaded = false;
/** Forward passes since the weights were loaded (the first one packs them). */
let passes = 0;
/** The last image's input tensor (1, 3, 224, 224): what activation maps are computed for. */
let input: Tensor | null = null;
const preprocess = new ImageClassification({ resizeSize: 256, cropSize: 224 });

interface Engine {
  backend: string;
  threads: number;
  warning: string | null;
}
let engine: Promise<Engine> | null = null;

/**
 * The wasm backend with as many threads as the browser offers cores when the page is
 * cross-origin isolated, else one (shared memory cannot reach other workers then): warned once.
 */
function startEngine(): Promise<Engine> {
  engine ??= (async () => {
    const fetchBytes = async (url: string) => new Uint8Array(await (await fetch(url)).arrayBuffer());
    const [relaxed, simd] = await Promise.all([fetchBytes(relaxedUrl), fetchBytes(simdUrl)]);
    let warning: string | null = null;
    let threads = navigator.hardwareConcurrency || 1;
    if (!self.crossOriginIsolated) {
      warning = 'resnet-ts: the page is not cross-origin isolated (COOP/COEP headers), so the wasm backend runs one thread';
      console.warn(warning);
      threads = 1;
    }
    const backend = await initWasmBackend({ threads, wasmBytes: { relaxed, simd } });
    setBackend('wasm');
    return { backend: `wasm (${backend.variant})`, threads: backend.threads, warning };
  })();
  return engine;
}

/** The model, built without drawing a random initialisation (weights replace it before any image is classified). */
function build(name: string): ResNet {
  if (model && arch === name) return model;
  const end = init.skipInit();
  try {
    model = getModel(name);
  } finally {
    end();
  }
  model.eval();
  arch = name;
  input = null;
  weightsLoaded = false;
  return model;
}

async function handle(request: Request): Promise<void> {
  switch (request.type) {
    case 'describe': {
      const m = build(request.arch);
      const summary = summarize(m, [1, 3, 224, 224]);
      post({
        id: request.id,
        type: 'described',
        arch: request.arch,
        svg: drawDiagram(m, [3, 224, 224]),
        layers: summary.layers.map(({ name, type, outputShape, params, macs, detail }) => ({ name, type, outputShape, params, macs, detail })),
        totalParams: summary.totalParams,
        totalMacs: summary.totalMacs,
        weights: Object.entries(getModelWeights(request.arch))
          .filter(([name]) => name !== 'DEFAULT')
          .map(([name, d]) => ({ name, url: d.url, fileSizeMB: d.meta.fileSizeMB ?? 0 })),
        categories: [...IMAGENET_CATEGORIES],
      });
      return;
    }
    case 'load-weights': {
      const ready = startEngine();
      const m = build(request.arch);
      let bytes: Uint8Array;
      let fromCache = false;
      if ('file' in request.source) {
        bytes = new Uint8Array(await request.source.file.arrayBuffer());
      } else {
        ({ bytes, fromCache } = await fetchWeights(request.source.url, {
          sha256Prefix: request.source.sha256Prefix,
          onProgress: (p) => post({ id: request.id, type: 'progress', ...p }),
        }));
      }
      const stateDict = readWeights(bytes);
      m.loadStateDict(stateDict);
      weightsLoaded = true;
      passes = 0;
      const { backend, threads } = await ready;
      post({ id: request.id, type: 'weights-loaded', arch: request.arch, keys: stateDict.size, bytes: bytes.length, fromCache, backend, threads });
      return;
    }
    case 'classify': {
      if (!model || !weightsLoaded) throw new Error('load weights first');
      const { backend, threads, warning } = await startEngine();
      const crop = preprocess.resizeAndCrop(rgbaPixels(request.image));
      input = toTensor([crop], preprocess.mean, preprocess.std);
      const start = performance.now();
      const logits = model.call(input);
      const forwardMs = performance.now() - start;
      const values = logits.f32.slice();
      const copy = input.f32.slice();
      const firstPass = passes++ === 0;
      post({ id: request.id, type: 'classified', logits: values, input: copy, crop, forwardMs, firstPass, backend, threads, warning }, [values.buffer, copy.buffer]);
      return;
    }
    case 'activation': {
      if (!model || !input) throw new Error('classify an image first');
      const output = extractFeatures(model, input, [request.module]).get(request.module)!;
      const shape = [...output.shape];
      const map = meanOverChannels(output);
      post({ id: request.id, type: 'activation', module: request.module, shape, width: shape[3] ?? 1, height: shape[2] ?? 1, map }, [map.buffer]);
      return;
    }
  }
}

function rgbaPixels(image: Rgba) {
  return { width: image.width, height: image.height, channels: 4, data: image.data };
}

/** (1, C, H, W) → (H, W), the mean over channels; (1, C) → (1, 1). */
function meanOverChannels(t: Tensor): Float32Array {
  const [, channels] = t.shape;
  const plane = t.size / channels;
  const out = new Float32Array(plane);
  const data = t.f32;
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < plane; i++) out[i] += data[c * plane + i];
  }
  for (let i = 0; i < plane; i++) out[i] /= channels;
  return out;
}

// One request at a time, in the order they came: the model is not reentrant.
let queue = Promise.resolve();
self.onmessage = (event: MessageEvent<Request>) => {
  const request = event.data;
  queue = queue.then(() =>
    handle(request).catch((error: unknown) => post({ id: request.id, type: 'error', message: error instanceof Error ? error.message : String(error) })),
  );
};
