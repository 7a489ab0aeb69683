// The demo page: pick or drop an image, see ImageNet's top five classes from a ResNet running on
// resnet-ts's wasm backend in a Web Worker, and explore the architecture diagram — each block's
// output shape, parameters, multiply-adds and its activation map for the current image.
//
// Query parameters (for links and tests): ?arch=resnet18 picks the model; ?weights=<url> loads
// weights from that URL at once; ?image=<url> classifies that image once weights are in.

import {
  drawDiagram, formatCount, formatScaled, getModel, getModelWeights, IMAGENET_CATEGORIES, IMAGENET_MEAN, IMAGENET_STD, imagePixels, init,
  isModelName, ModelWorker, summarize, type LayerSummary, type ModelName, type RgbImage, type Tensor,
} from 'resnet-ts';

/** What the page shows for an architecture: its diagram, its layers, and its ImageNet weights. */
interface Described {
  arch: string;
  svg: string;
  totalParams: number;
  totalMacs: number;
  /** torchvision's ImageNet weights for the architecture (the URLs the Node builders use). */
  weights: { name: string; url: string; fileSizeMB: number }[];
}

/** The last classification. */
interface Classified {
  logits: Float32Array;
  /** The model's input (1, 3, 224, 224), normalised: tests compare it with Node's preprocessing. */
  input: Float32Array;
  forwardMs: number;
  /** The first pass after loading weights also packs them for the kernels. */
  firstPass: boolean;
  backend: string;
  threads: number;
  /** Why the backend runs one thread, when the page is not cross-origin isolated. */
  warning: string | null;
}

const $ = <T extends HTMLElement>(selector: string) => document.querySelector<T>(selector)!;
const params = new URLSearchParams(location.search);
const worker = new ModelWorker(new Worker(new URL('./model-worker.ts', import.meta.url), { type: 'module' }));
/** The transforms of torchvision's IMAGENET1K_V1 weights, the ones the page offers. */
const PREPROCESS = { resizeSize: 256, cropSize: 224 };

/** What the page shows now; tests read it (window.resnetDemo). */
const state = {
  arch: 'resnet18' as ModelName,
  described: null as Described | null,
  weightsLoaded: false,
  engine: null as { backend: string; threads: number } | null,
  passes: 0,
  last: null as Classified | null,
  /** The last input, for the activation maps. */
  input: null as Tensor | null,
  /** The image to classify. */
  image: null as RgbImage | null,
  layers: new Map<string, LayerSummary>(),
  /** Activation maps of the current image, by module. */
  maps: new Map<string, { map: Float32Array; width: number; height: number; shape: number[] }>(),
  pinned: null as string | null,
  status: 'starting',
  error: null as string | null,
};
(window as unknown as { resnetDemo: typeof state }).resnetDemo = state;

function setStatus(text: string, kind: 'info' | 'busy' | 'error' = 'info'): void {
  const el = $('#status');
  el.textContent = text;
  el.dataset.kind = kind;
}

function fail(error: unknown): void {
  state.error = error instanceof Error ? error.message : String(error);
  state.status = 'error';
  setStatus(state.error, 'error');
}

// ------------------------------------------------------------------ model and weights

/** The architecture's diagram and per-layer numbers, from a model built here without its random initialisation (only its shapes are read). */
function describe(arch: ModelName): void {
  const end = init.skipInit();
  let model;
  try {
    model = getModel(arch);
  } finally {
    end();
  }
  const summary = summarize(model, [1, 3, 224, 224]);
  const weights = Object.entries(getModelWeights(arch))
    .filter(([name]) => name !== 'DEFAULT')
    .map(([name, d]) => ({ name, url: d.url, fileSizeMB: d.meta.fileSizeMB ?? 0 }));
  state.described = { arch, svg: drawDiagram(model, [3, 224, 224]), totalParams: summary.totalParams, totalMacs: summary.totalMacs, weights };
  state.layers = new Map(summary.layers.map((l) => [l.name, l]));
  state.weightsLoaded = false;
  state.last = null;
  state.input = null;
  state.maps.clear();
  $<HTMLInputElement>('#weights-url').value = params.get('weights') ?? weights[0]?.url ?? '';
  $('#weights-size').textContent = weights[0] ? `(${weights[0].fileSizeMB.toFixed(1)} MB)` : '';
  $('#model-totals').textContent = `${formatScaled(summary.totalParams)} parameters · ${formatScaled(summary.totalMacs)} MACs at 224×224`;
  showDiagram(state.described.svg);
  renderResults();
  setStatus(`${arch}: load weights to classify`);
  state.status = 'described';
}

async function loadWeights(source: string | File): Promise<void> {
  // The builders take a URL (fetched, kept in the Cache Storage, checked against the SHA-256
  // prefix in its name) or a File; a relative URL is made absolute here.
  const weights = typeof source === 'string' ? new URL(source, location.href).href : source;
  setStatus(`loading weights from ${typeof source === 'string' ? weights : source.name}…`, 'busy');
  state.status = 'loading';
  const progress = $<HTMLProgressElement>('#weights-progress');
  progress.hidden = false;
  progress.removeAttribute('value');
  const threads = navigator.hardwareConcurrency || 1;
  state.engine = await worker.load({ arch: state.arch, weights, threads }, (loaded, total) => {
    if (total) progress.value = loaded / total;
    setStatus(`weights: ${(loaded / 2 ** 20).toFixed(1)}${total ? ` / ${(total / 2 ** 20).toFixed(1)}` : ''} MiB`, 'busy');
  });
  progress.hidden = true;
  state.weightsLoaded = true;
  state.passes = 0;
  setStatus(`weights loaded: ${state.arch} on ${state.engine.backend}, ${state.engine.threads} thread${state.engine.threads === 1 ? '' : 's'}`);
  state.status = 'weights';
  if (state.image) await classify();
}

// ------------------------------------------------------------------ images

async function setImage(source: Blob, name: string): Promise<void> {
  // Decoded as the library decodes files in a browser: the pixels PIL reads from a PNG.
  const image = await imagePixels(source);
  state.image = image;
  $('#image-name').textContent = `${name} · ${image.width}×${image.height}`;
  drawRgb($<HTMLCanvasElement>('#original'), image);
  if (state.weightsLoaded) await classify();
}

async function classify(): Promise<void> {
  setStatus('classifying…', 'busy');
  state.status = 'classifying';
  const result = await worker.classify(state.image!, PREPROCESS);
  const { backend, threads } = state.engine!;
  state.input = result.input!;
  state.maps.clear();
  state.last = {
    logits: result.output.f32,
    input: result.input!.f32,
    forwardMs: result.milliseconds,
    firstPass: state.passes++ === 0,
    backend,
    threads,
    warning: !crossOriginIsolated && threads === 1 ? 'the page is not cross-origin isolated (no COOP/COEP headers), so the wasm backend runs one thread' : null,
  };
  drawRgb($<HTMLCanvasElement>('#crop'), cropOf(state.input));
  $<HTMLCanvasElement>('#heatmap').getContext('2d')!.clearRect(0, 0, 224, 224);
  renderResults();
  state.status = 'classified';
  setStatus(state.last.warning ?? 'done: hover or click a block of the diagram for its activation map');
  if (state.pinned) await showLayer(state.pinned);
}

/** The 8-bit crop the model saw, from its normalised input (1, 3, H, W). */
function cropOf(input: Tensor): RgbImage {
  const [, , height, width] = input.shape;
  const plane = height * width;
  const data = new Uint8Array(plane * 3);
  const x = input.f32;
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) data[i * 3 + c] = Math.round((x[c * plane + i] * IMAGENET_STD[c] + IMAGENET_MEAN[c]) * 255);
  }
  return { width, height, channels: 3, data };
}

function drawRgb(canvas: HTMLCanvasElement, image: RgbImage): void {
  canvas.width = image.width;
  canvas.height = image.height;
  const rgba = new ImageData(image.width, image.height);
  for (let i = 0; i < image.width * image.height; i++) {
    rgba.data.set(image.data.subarray(i * 3, i * 3 + 3), i * 4);
    rgba.data[i * 4 + 3] = 255;
  }
  canvas.getContext('2d')!.putImageData(rgba, 0, 0);
}

// ------------------------------------------------------------------ results

function softmax(logits: Float32Array): Float64Array {
  const max = Math.max(...logits);
  const exps = Float64Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

function renderResults(): void {
  const list = $('#top5');
  list.replaceChildren();
  const timing = $('#timing');
  const last = state.last;
  if (!last || !state.described) {
    timing.textContent = '';
    return;
  }
  const probabilities = softmax(last.logits);
  const top = [...probabilities.keys()].sort((a, b) => probabilities[b] - probabilities[a]).slice(0, 5);
  for (const index of top) {
    const row = document.createElement('li');
    row.className = 'bar';
    row.dataset.index = String(index);
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = IMAGENET_CATEGORIES[index] ?? `class ${index}`;
    const track = document.createElement('span');
    track.className = 'track';
    const fill = document.createElement('span');
    fill.className = 'fill';
    fill.style.width = `${Math.max(0.5, probabilities[index] * 100).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement('span');
    value.className = 'value';
    value.textContent = `${(probabilities[index] * 100).toFixed(1)}%`;
    row.append(label, track, value);
    list.append(row);
  }
  const packing = last.firstPass ? ' (first pass: packs the weights too)' : '';
  timing.textContent = `forward pass ${last.forwardMs.toFixed(1)} ms${packing} · ${last.backend} · ${last.threads} thread${last.threads === 1 ? '' : 's'}`;
  timing.dataset.threads = String(last.threads);
  timing.dataset.backend = last.backend;
}

// ------------------------------------------------------------------ diagram

/** The module a diagram box stands for: the first state-dict path it names. */
function moduleOf(box: Element): string | null {
  const names = box.getAttribute('data-names')?.split(' ').filter(Boolean) ?? [];
  const name = names[0];
  return name && state.layers.has(name) ? name : null;
}

function showDiagram(svg: string): void {
  const holder = $('#diagram');
  holder.innerHTML = svg;
  for (const box of holder.querySelectorAll('g[data-kind]')) {
    const name = moduleOf(box);
    if (!name) continue;
    box.classList.add('module');
    box.setAttribute('data-module', name);
  }
  holder.onmouseover = (event) => {
    const box = (event.target as Element).closest('g.module');
    if (box && !state.pinned) void showLayer(box.getAttribute('data-module')!).catch(fail);
  };
  holder.onclick = (event) => {
    const box = (event.target as Element).closest('g.module');
    const name = box?.getAttribute('data-module') ?? null;
    state.pinned = name === state.pinned ? null : name;
    for (const b of holder.querySelectorAll('g.pinned')) b.classList.remove('pinned');
    if (state.pinned) box!.classList.add('pinned');
    if (name) void showLayer(name).catch(fail);
  };
}

/** The layer whose numbers the panel shows. */
let shownLayer: string | null = null;
/** The layer whose map is wanted next, and whether the worker is computing one now. */
let wantedMap: string | null = null;
let computingMap = false;

async function showLayer(name: string): Promise<void> {
  shownLayer = name;
  const layer = state.layers.get(name)!;
  for (const b of document.querySelectorAll('#diagram g.hover')) b.classList.remove('hover');
  document.querySelector(`#diagram g[data-module="${CSS.escape(name)}"]`)?.classList.add('hover');
  $('#layer-name').textContent = `${name} · ${layer.type}`;
  $('#layer-detail').textContent = layer.detail;
  $('#layer-shape').textContent = layer.outputShape ? `[${layer.outputShape.join(', ')}]` : '—';
  $('#layer-params').textContent = formatCount(layer.params);
  $('#layer-macs').textContent = formatCount(layer.macs);
  if (!state.input) {
    $('#layer-map-note').textContent = 'classify an image to see this layer’s activation map';
    return;
  }
  const ready = state.maps.get(name);
  if (ready) return drawMap(name, ready);
  $('#layer-map-note').textContent = 'computing the activation map…';
  await computeMaps(name);
}

/**
 * Computes the map of `name` in the worker (a forward pass with that module captured). While
 * one is being computed, a pointer moving over the diagram only updates which map is wanted
 * next, so passes never queue up behind it.
 */
async function computeMaps(name: string): Promise<void> {
  wantedMap = name;
  if (computingMap) return;
  computingMap = true;
  try {
    while (wantedMap) {
      const next = wantedMap;
      wantedMap = null;
      const input = state.input!;
      const { captured } = await worker.forward(input, { capture: [next] });
      if (input !== state.input) continue; // a new image came meanwhile
      const output = captured.get(next)!;
      const entry = { map: meanOverChannels(output), shape: [...output.shape], height: output.shape[2] ?? 1, width: output.shape[3] ?? 1 };
      state.maps.set(next, entry);
      if (next === shownLayer) drawMap(next, entry);
    }
  } finally {
    computingMap = false;
  }
}

function drawMap(name: string, entry: { map: Float32Array; width: number; height: number; shape: number[] }): void {
  const note = $('#layer-map-note');
  if (entry.width * entry.height === 1) {
    $<HTMLCanvasElement>('#heatmap').getContext('2d')!.clearRect(0, 0, 224, 224);
    note.textContent = `output ${entry.shape.slice(1).join('×')}: no spatial extent, so no map`;
  } else {
    drawHeatmap(entry.map, entry.width, entry.height);
    note.textContent = `mean over ${entry.shape[1]} channels of ${entry.shape.slice(1).join('×')}, as a heat map over the crop`;
  }
  state.status = `activation:${name}`;
}

/** (1, C, H, W) → (H, W), the mean over channels; (1, C) → one value. */
function meanOverChannels(t: Tensor): Float32Array {
  const channels = t.shape[1];
  const plane = t.size / channels;
  const out = new Float32Array(plane);
  const data = t.f32;
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < plane; i++) out[i] += data[c * plane + i];
  }
  for (let i = 0; i < plane; i++) out[i] /= channels;
  return out;
}

/** A perceptual blue → green → yellow ramp (viridis' end points and middle). */
function colour(t: number): [number, number, number] {
  const stops: [number, number, number][] = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.min(0.9999, Math.max(0, t)) * (stops.length - 1);
  const i = Math.floor(x);
  const f = x - i;
  return [0, 1, 2].map((c) => Math.round(stops[i][c] + f * (stops[i + 1][c] - stops[i][c]))) as [number, number, number];
}

function drawHeatmap(map: Float32Array, width: number, height: number): void {
  let min = Infinity;
  let max = -Infinity;
  for (const v of map) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const small = new OffscreenCanvas(width, height);
  const pixels = new ImageData(width, height);
  for (let i = 0; i < map.length; i++) {
    const [r, g, b] = colour(max > min ? (map[i] - min) / (max - min) : 0.5);
    pixels.data.set([r, g, b, 255], i * 4);
  }
  small.getContext('2d')!.putImageData(pixels, 0, 0);
  const canvas = $<HTMLCanvasElement>('#heatmap');
  const context = canvas.getContext('2d')!;
  context.clearRect(0, 0, canvas.width, canvas.height);
  context.imageSmoothingEnabled = width > 1;
  context.drawImage(small, 0, 0, canvas.width, canvas.height);
}

// ------------------------------------------------------------------ wiring

$('#arch').addEventListener('change', (event) => {
  try {
    selectArch((event.target as HTMLSelectElement).value);
  } catch (error) {
    fail(error);
  }
});
/** A failed download, with what to do about it when it is the network's or the server's doing. */
function failDownload(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  const hint = /fetch|network|cors|http/i.test(message)
    ? ' (the server may not allow this page to download from it: save the file and pick it below)'
    : '';
  fail(new Error(`${message}${hint}`));
}

$('#weights-load').addEventListener('click', () => void loadWeights($<HTMLInputElement>('#weights-url').value).catch(failDownload));
$('#weights-file').addEventListener('change', (event) => {
  const file = (event.target as HTMLInputElement).files?.[0];
  if (file) void loadWeights(file).catch(fail);
});
$('#image-file').addEventListener('change', (event) => {
  const file = (event.target as HTMLInputElement).files?.[0];
  if (file) void setImage(file, file.name).catch(fail);
});
const drop = $('#drop');
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (file) void setImage(file, file.name).catch(fail);
});

function selectArch(name: string): void {
  if (!isModelName(name)) throw new RangeError(`no architecture '${name}'`);
  state.arch = name;
  $<HTMLSelectElement>('#arch').value = name;
  describe(name);
}

async function start(): Promise<void> {
  $('#isolation').textContent = crossOriginIsolated ? 'cross-origin isolated' : 'not cross-origin isolated: one thread';
  selectArch(params.get('arch') ?? state.arch);
  const imageUrl = params.get('image') ?? './sample.png';
  const response = await fetch(imageUrl);
  if (!response.ok) throw new Error(`cannot fetch ${imageUrl}: HTTP ${response.status}`);
  await setImage(await response.blob(), imageUrl.split('/').pop()!);
  const weights = params.get('weights');
  if (weights) await loadWeights(weights).catch(failDownload);
}
void start().catch(fail);
