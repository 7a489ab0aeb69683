// The script of the browser tests' page (bundled by esbuild, as an application would bundle
// resnet-ts): each function below is called by a test through page.evaluate and returns plain
// data for the test to compare with what Node computes.

import {
  initWasmBackend, setBackend, getBackend, resnet18, ModelWorker, preprocessImage, imagePixels, ImageClassification,
  loadStateDictFromUrl, WeightFileError, type WasmBackend,
} from '../../../src/web.js';
import { deterministicInput, filledModel } from '../../helpers/fill.js';

interface SeededRun {
  logits: number[];
  threads: number;
  variant: string;
  isolated: boolean;
  workerSlices: number;
}

/** A ResNet-18 filled by the tests' formula, run on the wasm backend with `threads` threads. */
async function runSeeded(shape: number[], numClasses: number, threads: number): Promise<SeededRun> {
  const backend: WasmBackend = await initWasmBackend({ threads });
  setBackend('wasm');
  const model = filledModel(() => resnet18({ numClasses })).eval();
  const logits = model.forward(deterministicInput(shape));
  // A second pass, so that the workers (if any) have surely taken slices.
  model.forward(deterministicInput(shape));
  return {
    logits: [...logits.f32], threads: backend.threads, variant: backend.variant,
    isolated: globalThis.crossOriginIsolated, workerSlices: backend.stats().workerSlices,
  };
}

/** The same model in a Web Worker through ModelWorker, its weights given as the file's bytes. */
async function runInWorker(
  shape: number[], numClasses: number, weightsUrl: string, threads: number, imageUrl: string,
): Promise<{ logits: number[]; backend: string; threads: number; mainThreadFree: boolean; classifiedInput: number[]; classifiedLogits: number[] }> {
  const worker = new ModelWorker(new Worker('./worker.js', { type: 'module' }));
  try {
    const weights = new Uint8Array(await (await fetch(weightsUrl)).arrayBuffer());
    const loaded = await worker.load({ arch: 'resnet18', options: { numClasses }, weights, backend: 'wasm', threads });
    // The page's own timers keep running while the worker computes.
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const result = await worker.forward(deterministicInput(shape), { capture: ['layer1'] });
    clearInterval(timer);
    if (result.captured.get('layer1')?.shape.length !== 4) throw new Error('layer1 was not captured');
    // An image file preprocessed and classified in the worker.
    const classified = await worker.classify(await (await fetch(imageUrl)).blob(), { resizeSize: 80, cropSize: 64 });
    return {
      logits: [...result.output.f32], backend: loaded.backend, threads: loaded.threads, mainThreadFree: ticks > 0,
      classifiedInput: [...classified.input!.f32], classifiedLogits: [...classified.output.f32],
    };
  } finally {
    worker.terminate();
  }
}

/** A worker whose script does not exist: the error must say so. */
async function brokenWorker(): Promise<string> {
  const worker = new ModelWorker(new Worker('./no-such-worker.js', { type: 'module' }));
  try {
    await worker.load({ arch: 'resnet18' });
    return 'loaded';
  } catch (error) {
    return (error as Error).message;
  } finally {
    worker.terminate();
  }
}

/** The preprocessed tensor of an image file at `url`, from a Blob, an ImageBitmap and an <img>, and its 8-bit crop. */
async function preprocessFile(url: string, resizeSize: number, cropSize: number): Promise<{ blob: number[]; bitmap: number[]; image: number[]; crop: number[] }> {
  const blob = await (await fetch(url)).blob();
  const options = { resizeSize, cropSize };
  const fromBlob = await preprocessImage(blob, options);
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const fromBitmap = await preprocessImage(bitmap, options);
  const image = new Image();
  image.src = url;
  const fromImage = await preprocessImage(image, options);
  const crop = new ImageClassification(options).resizeAndCrop(await imagePixels(blob));
  return { blob: [...fromBlob.f32], bitmap: [...fromBitmap.f32], image: [...fromImage.f32], crop: [...crop.data] };
}

/** loadStateDictFromUrl in the page: progress seen, and a sample of the tensors. */
async function loadWeightsByUrl(url: string): Promise<{ keys: number; progressCalls: number; lastLoaded: number; sample: number[] } | { error: string; name: string }> {
  let progressCalls = 0;
  let lastLoaded = 0;
  try {
    const stateDict = await loadStateDictFromUrl(url, { progress: (loaded) => (progressCalls++, (lastLoaded = loaded)) });
    const first = stateDict.get('conv1.weight')!;
    return { keys: stateDict.size, progressCalls, lastLoaded, sample: [...first.f32.subarray(0, 8)] };
  } catch (error) {
    return { error: (error as Error).message, name: (error as Error).name, isWeightFileError: error instanceof WeightFileError } as never;
  }
}

/** Which backend `auto` picks on this page, started synchronously. */
function autoBackend(): string {
  setBackend('auto');
  return getBackend().name;
}

Object.assign(globalThis, { runSeeded, runInWorker, brokenWorker, preprocessFile, loadWeightsByUrl, autoBackend, pageReady: true });
