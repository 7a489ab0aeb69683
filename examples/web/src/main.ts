// The demo page: pick or drop an image, see ImageNet's top five classes from a ResNet running on
// resnet-ts's wasm backend in a Web Worker, and explore the architecture diagram — each block's
// output shape, parameters, multiply-adds and its activation map for the current image.
//
// Query parameters (for links and tests): ?arch=resnet18 picks the model; ?weights=<url> loads
// weights from that URL at once; ?image=<url> classifies that image once weights are in.

import { ModelClient } from './client.js';
import type { LayerInfo, Reply, Rgb } from './protocol.js';

type Described = Extract<Reply, { type: 'described' }>;
type Classified = Extract<Reply, { type: 'classified' }>;

const $ = <T extends HTMLElement>(selector: string) => document.querySelector<T>(selector)!;
const params = new URLSearchParams(location.search);
const client = new ModelClient();

/** What the page shows now; tests read it (window.resnetDemo). */
const state = {
  arch: params.get('arch') ?? 'resnet18',
  described: null as Described | null,
  weightsLoaded: false,
  last: null as Classified | null,
  /** The image to classify, as pixels. */
  image: null as ImageData | null,
  layers: new Map<string, LayerInfo>(),
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

const formatCount = (n: number) => n.toLocaleString('en-US');
const formatScaled = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(n));

// ------------------------------------------------------------------ model and weights

async function describe(arch: string): Promise<void> {
  setStatus(`building ${arch}…`, 'busy');
  const described = await client.call<'described'>({ type: 'describe', arch });
  state.described = described;
  state.layers = new Map(described.layers.map((l) => [l.name, l]));
  state.weightsLoaded = false;
  state.last = null;
  const url = $<HTMLInputElement>('#weights-url');
  url.value = params.get('weights') ?? described.weights[0]?.url ?? '';
  $('#weights-size').textContent = described.weights[0] ? `(${described.weights[0].fileSizeMB.toFixed(1)} MB)` : '';
  $('#model-totals').textContent = `${formatScaled(described.totalParams)} parameters · ${formatScaled(described.totalMacs)} MACs at 224×224`;
  showDiagram(described.svg);
  renderResults();
  setStatus(`${arch} built with random weights: load weights to classify`);
  state.status = 'described';
}

async function loadWeights(source: { url: string } | { file: File }): Promise<void> {
  const what = 'url' in source ? source.url : source.file.name;
  setStatus(`loading weights from ${what}…`, 'busy');
  state.status = 'loading';
  const progress = $<HTMLProgressElement>('#weights-progress');
  progress.hidden = false;
  progress.removeAttribute('value');
  const loaded = await client.call<'weights-loaded'>({ type: 'load-weights', arch: state.arch, source }, (p) => {
    if (p.total) progress.value = p.loaded / p.total;
    setStatus(`${p.fromCache ? 'reading cached' : 'downloading'} weights: ${(p.loaded / 2 ** 20).toFixed(1)}${p.total ? ` / ${(p.total / 2 ** 20).toFixed(1)}` : ''} MiB`, 'busy');
  });
  progress.hidden = true;
  state.weightsLoaded = true;
  setStatus(`weights loaded: ${loaded.keys} tensors, ${(loaded.bytes / 2 ** 20).toFixed(1)} MiB${loaded.fromCache ? ' (from the browser cache)' : ''}`);
  state.status = 'weights';
  if (state.image) await classify();
}

// ------------------------------------------------------------------ images

async function pixelsOf(source: Blob): Promise<ImageData> {
  // No colour management and no premultiplication: the bytes a PNG holds, as PIL reads them.
  const bitmap = await createImageBitmap(source, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext('2d')!;
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return context.getImageData(0, 0, canvas.width, canvas.height);
}

async function setImage(source: Blob, name: string): Promise<void> {
  state.image = await pixelsOf(source);
  $('#image-name').textContent = `${name} · ${state.image.width}×${state.image.height}`;
  const preview = $<HTMLCanvasElement>('#original');
  preview.width = state.image.width;
  preview.height = state.image.height;
  preview.getContext('2d')!.putImageData(state.image, 0, 0);
  if (state.weightsLoaded) await classify();
}

async function classify(): Promise<void> {
  const image = state.image!;
  setStatus('classifying…', 'busy');
  state.status = 'classifying';
  const data = new Uint8ClampedArray(image.data);
  state.last = await client.call<'classified'>({ type: 'classify', image: { width: image.width, height: image.height, data } });
  drawCrop(state.last.crop);
  renderResults();
  state.status = 'classified';
  setStatus(state.last.warning ?? 'done: hover or click a block of the diagram for its activation map');
  if (state.pinned) await showLayer(state.pinned);
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
    label.textContent = state.described.categories[index] ?? `class ${index}`;
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

function drawCrop(crop: Rgb): void {
  const canvas = $<HTMLCanvasElement>('#crop');
  canvas.width = crop.width;
  canvas.height = crop.height;
  const rgba = new ImageData(crop.width, crop.height);
  for (let i = 0; i < crop.width * crop.height; i++) {
    rgba.data.set(crop.data.subarray(i * 3, i * 3 + 3), i * 4);
    rgba.data[i * 4 + 3] = 255;
  }
  canvas.getContext('2d')!.putImageData(rgba, 0, 0);
  ($('#heatmap') as HTMLCanvasElement).getContext('2d')!.clearRect(0, 0, 224, 224);
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

let activationRequest = 0;

async function showLayer(name: string): Promise<void> {
  const layer = state.layers.get(name)!;
  for (const b of document.querySelectorAll('#diagram g.hover')) b.classList.remove('hover');
  document.querySelector(`#diagram g[data-module="${CSS.escape(name)}"]`)?.classList.add('hover');
  $('#layer-name').textContent = `${name} · ${layer.type}`;
  $('#layer-detail').textContent = layer.detail;
  $('#layer-shape').textContent = layer.outputShape ? `[${layer.outputShape.join(', ')}]` : '—';
  $('#layer-params').textContent = formatCount(layer.params);
  $('#layer-macs').textContent = formatCount(layer.macs);
  const note = $('#layer-map-note');
  if (!state.last) {
    note.textContent = 'classify an image to see this layer’s activation map';
    return;
  }
  const request = ++activationRequest;
  const reply = await client.call<'activation'>({ type: 'activation', module: name });
  if (request !== activationRequest) return; // the pointer has moved on
  drawHeatmap(reply.map, reply.width, reply.height);
  note.textContent = `mean over ${reply.shape[1]} channels of ${reply.shape.slice(1).join('×')}, as a heat map over the crop`;
  state.status = `activation:${name}`;
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
  state.arch = (event.target as HTMLSelectElement).value;
  void describe(state.arch).catch(fail);
});
$('#weights-load').addEventListener('click', () => void loadWeights({ url: $<HTMLInputElement>('#weights-url').value }).catch(fail));
$('#weights-file').addEventListener('change', (event) => {
  const file = (event.target as HTMLInputElement).files?.[0];
  if (file) void loadWeights({ file }).catch(fail);
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

async function start(): Promise<void> {
  $<HTMLSelectElement>('#arch').value = state.arch;
  $('#isolation').textContent = crossOriginIsolated ? 'cross-origin isolated' : 'not cross-origin isolated: one thread';
  await describe(state.arch);
  const imageUrl = params.get('image') ?? './sample.png';
  const response = await fetch(imageUrl);
  if (!response.ok) throw new Error(`cannot fetch ${imageUrl}: HTTP ${response.status}`);
  await setImage(await response.blob(), imageUrl.split('/').pop()!);
  const weights = params.get('weights');
  if (weights) await loadWeights({ url: weights });
}
void start().catch(fail);
