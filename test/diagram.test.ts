// The ResNet figure for every builder: well-formed SVG, every block and convolution shown,
// boxes nested or apart but never overlapping, everything inside the page, every line of text
// inside its box, and the numbers the summary traces; plus `resnet diagram`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOMParser, type Element } from '@xmldom/xmldom';
import { Conv2d } from '../src/nn/layers.js';
import { getModel, listModels, type BuilderOptions } from '../src/models/builders.js';
import { CifarResNet } from '../src/models/resnet-cifar.js';
import { drawDiagram } from '../src/tools/diagram.js';
import { formatCount, summarize } from '../src/tools/summary.js';
import { repoRoot } from './helpers/paths.js';
import { uninitialised } from './helpers/fill.js';
import { collectGarbageAfterEachTest } from './helpers/memory.js';

collectGarbageAfterEachTest();

interface Box {
  kind: string;
  names: string[];
  x: number;
  y: number;
  width: number;
  height: number;
  texts: { x: number; y: number; size: number; anchor: string; text: string }[];
}

/** DejaVu Sans Mono's advance, the narrowest the layout may assume (it reserves 0.62 em). */
const GLYPH_EM = 0.602;

function parseSvg(svg: string): { root: Element; boxes: Box[]; viewBox: number[] } {
  const doc = new DOMParser({
    onError: (level, message) => {
      throw new Error(`SVG is not well-formed XML (${level}): ${message}`);
    },
  }).parseFromString(svg, 'image/svg+xml');
  const root = doc.documentElement!;
  assert.equal(root.tagName, 'svg');
  assert.equal(root.getAttribute('xmlns'), 'http://www.w3.org/2000/svg');
  const viewBox = root.getAttribute('viewBox')!.split(' ').map(Number);
  const boxes: Box[] = [];
  for (const g of Array.from(root.getElementsByTagName('g'))) {
    const kind = g.getAttribute('data-kind');
    if (!kind) continue;
    const rects = g.getElementsByTagName('rect');
    assert.equal(rects.length, 1, `one rect per box (${kind})`);
    const num = (el: Element, name: string): number => Number(el.getAttribute(name));
    const rect = rects[0];
    boxes.push({
      kind,
      names: g.getAttribute('data-names')!.split(' '),
      x: num(rect, 'x'),
      y: num(rect, 'y'),
      width: num(rect, 'width'),
      height: num(rect, 'height'),
      texts: Array.from(g.getElementsByTagName('text')).map((t) => ({
        x: num(t, 'x'), y: num(t, 'y'), size: num(t, 'font-size'), anchor: t.getAttribute('text-anchor') ?? 'start', text: t.textContent ?? '',
      })),
    });
  }
  return { root, boxes, viewBox };
}

const EPS = 0.01;

function contains(outer: Box, inner: Box): boolean {
  return inner.x >= outer.x - EPS && inner.y >= outer.y - EPS &&
    inner.x + inner.width <= outer.x + outer.width + EPS && inner.y + inner.height <= outer.y + outer.height + EPS;
}

function apart(a: Box, b: Box): boolean {
  return a.x + a.width <= b.x + EPS || b.x + b.width <= a.x + EPS || a.y + a.height <= b.y + EPS || b.y + b.height <= a.y + EPS;
}

/** The horizontal extent of a text at DejaVu Sans Mono's advance width. */
function textExtent(t: Box['texts'][number]): [number, number] {
  const width = [...t.text].length * t.size * GLYPH_EM;
  if (t.anchor === 'middle') return [t.x - width / 2, t.x + width / 2];
  if (t.anchor === 'end') return [t.x - width, t.x];
  return [t.x, t.x + width];
}

function checkDiagram(name: string, options: BuilderOptions = {}, input = [3, 224, 224]): Box[] {
  const model = uninitialised(() => getModel(name, options)); // the drawing needs shapes only
  const svg = drawDiagram(model, input, { title: name });
  const { root, boxes, viewBox } = parseSvg(svg);
  const [vx, vy, vw, vh] = viewBox;

  // Every block and every convolution is shown (a repeated block inside its "× N" box).
  const shown = new Set(boxes.flatMap((b) => b.names));
  const blockNames = new Set(boxes.filter((b) => b.kind === 'block').flatMap((b) => b.names));
  for (const [moduleName, module] of model.namedModules()) {
    if (/^layer\d\.\d+$/.test(moduleName)) assert.ok(blockNames.has(moduleName), `${name}: block ${moduleName} is drawn`);
    if (module instanceof Conv2d) {
      const owner = moduleName.replace(/\.0$/, ''); // a downsample's convolution is in its downsample box
      assert.ok(shown.has(moduleName) || shown.has(owner), `${name}: ${moduleName} is drawn`);
    }
  }
  const stages = model instanceof CifarResNet ? ['layer1', 'layer2', 'layer3'] : ['layer1', 'layer2', 'layer3', 'layer4'];
  for (const stage of ['stem', ...stages, 'head']) {
    assert.equal(boxes.filter((b) => b.kind === 'stage' && b.names[0] === stage).length, 1, `${name}: stage ${stage}`);
  }

  for (const box of boxes) {
    assert.ok(box.width > 0 && box.height > 0, `${name}: ${box.names[0]} has a size`);
    assert.ok(box.x >= vx && box.y >= vy && box.x + box.width <= vx + vw && box.y + box.height <= vy + vh, `${name}: ${box.names[0]} inside the viewBox`);
    for (const t of box.texts) {
      const [left, right] = textExtent(t);
      const inside = left >= box.x && right <= box.x + box.width && t.y - t.size >= box.y && t.y <= box.y + box.height;
      assert.ok(inside, `${name}: "${t.text}" fits its box ${box.names[0]}`);
    }
  }
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const [a, b] = [boxes[i], boxes[j]];
      assert.ok(apart(a, b) || contains(a, b) || contains(b, a), `${name}: ${a.kind} ${a.names[0]} and ${b.kind} ${b.names[0]} overlap`);
    }
  }
  // Free text (headings, edge labels) stays on the page too.
  for (const t of Array.from(root.getElementsByTagName('text'))) {
    const size = Number(t.getAttribute('font-size'));
    const [left, right] = textExtent({ x: Number(t.getAttribute('x')), y: 0, size, anchor: t.getAttribute('text-anchor') ?? 'start', text: t.textContent ?? '' });
    assert.ok(left >= vx && right <= vx + vw, `${name}: "${t.textContent}" on the page`);
  }

  const summary = summarize(model, [1, ...input]);
  assert.match(svg, new RegExp(`${formatCount(summary.totalParams)} params`), `${name}: total parameters`);
  return boxes;
}

for (const name of listModels()) {
  test(`${name}: valid SVG, every block, no overlaps, all inside the page`, () => {
    checkDiagram(name);
  });
}

test('blocks that repeat exactly are drawn once with × N; the first block of a stage stands alone', () => {
  const boxes = checkDiagram('resnet152');
  const blocks = boxes.filter((b) => b.kind === 'block').map((b) => b.names);
  assert.deepEqual(blocks.map((n) => n.length), [1, 2, 1, 7, 1, 35, 1, 2]);
  assert.deepEqual(blocks[5], Array.from({ length: 35 }, (_, i) => `layer3.${i + 1}`));
  // resnet18's layer1 has no downsample: both of its blocks are the same.
  assert.deepEqual(checkDiagram('resnet18').filter((b) => b.kind === 'block').map((b) => b.names.length), [2, 1, 1, 1, 1, 1, 1]);
});

test('dilation, groups, class count and input size show in the boxes', () => {
  const svg = drawDiagram(getModel('resnext50_32x4d', { replaceStrideWithDilation: [false, true, true], numClasses: 10, seed: 0 }), [3, 97, 131]);
  // The first block of a dilated stage keeps the previous dilation, as in torchvision.
  assert.match(svg, />3×3 conv, 512, g32</);
  assert.match(svg, />3×3 conv, 512, g32, d2</);
  assert.match(svg, />3×3 conv, 1024, g32, d2</);
  assert.match(svg, />3×3 conv, 1024, g32, d4</);
  assert.match(svg, />→ 2048×13×17</);
  assert.match(svg, />fc, 10</);
  checkDiagram('resnext50_32x4d', { replaceStrideWithDilation: [false, true, true], numClasses: 10 }, [3, 97, 131]);
  checkDiagram('wide_resnet101_2', { replaceStrideWithDilation: [true, true, true] }, [3, 64, 64]);
});

const bin = join(repoRoot, 'bin', 'resnet.js');

test('resnet diagram writes the SVG to a file or stdout; bad arguments exit 2, inputs the model cannot take 5', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'resnet-diagram-')), 'r50.svg');
  const run = (...args: string[]) => spawnSync(process.execPath, [bin, 'diagram', ...args], { encoding: 'utf8' });
  let r = run('resnet50', '-o', out);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(out, 'utf8'), drawDiagram(getModel('resnet50'), [3, 224, 224], { title: 'resnet50' }));
  r = run('resnet18', '--input', '3x64x64', '--num-classes', '10');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^<svg /);
  assert.match(r.stdout, />fc, 10</);
  for (const [args, status] of [[['resnet19'], 2], [['resnet18', '--input', '3x64'], 2], [['resnet18', '--input', '3x64x64', '--in-channels', '1'], 5]] as const) {
    r = run(...args);
    assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
