// The classic ResNet figure as an SVG, drawn from the model itself: one column per stage
// (stem, layer1 … layer4 or layer3 for the CIFAR ResNets, head), each block with its convolutions in the paper's notation
// ("3×3 conv, 128, /2"), the shortcut beside them (identity, or the downsample convolution),
// and every layer's output shape and parameter count, traced by `summarize`.
//
// Blocks that repeat exactly (same convolutions, same shapes: every block of a stage after
// the first) are drawn once with "× N", as in Table 1 of He et al. 2015, so ResNet-152's 50
// blocks take the same page as ResNet-50's 16. Sizes are computed from the text they hold
// (monospace, so widths are known without fonts), and boxes nest but never overlap.

import { Conv2d, type Sequential } from '../nn/layers.js';
import { BasicBlock, Bottleneck, ResNet } from '../models/resnet.js';
import { ShortcutA } from '../models/resnet-cifar.js';
import type { AnyResNet } from '../models/builders.js';
import { formatCount, formatScaled, summarize, type LayerSummary } from './summary.js';

// --- text and geometry ------------------------------------------------------------------------

const FONT_FAMILY = "'DejaVu Sans Mono', Menlo, Consolas, 'Liberation Mono', monospace";
/** Advance width of a monospace glyph, in em (DejaVu Sans Mono: 0.602; a little margin on top). */
const CHAR_EM = 0.62;
const FONT_SIZE = 11;
const HEADER_SIZE = 12;
const TITLE_SIZE = 16;
const LINE_HEIGHT = 14;
const PAD = 8;
/** Vertical room for an arrow between two stacked boxes. */
const ARROW_GAP = 16;
const GUTTER = 40;
const MARGIN = 20;
const PLUS_RADIUS = 8;

interface Line {
  text: string;
  bold?: boolean;
  size?: number;
  /** Right-aligned text on the same line (a block's "× 35"). */
  right?: string;
}

function textWidth(text: string, size = FONT_SIZE): number {
  return [...text].length * size * CHAR_EM;
}

function lineWidth(line: Line): number {
  const size = line.size ?? FONT_SIZE;
  return textWidth(line.text, size) + (line.right ? textWidth(line.right, size) + 2 * size : 0);
}

function linesWidth(lines: readonly Line[]): number {
  return Math.max(0, ...lines.map(lineWidth));
}

function linesHeight(lines: readonly Line[]): number {
  return lines.reduce((h, l) => h + Math.max(LINE_HEIGHT, (l.size ?? FONT_SIZE) + 4), 0);
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const round = (v: number): number => Math.round(v * 10) / 10;

/** Where each kind of box gets its colour: convolutions by kernel size, like most ResNet figures. */
const FILL: Record<string, string> = {
  conv1x1: '#dbeafe',
  conv3x3: '#fef3c7',
  conv7x7: '#ede9fe',
  convOther: '#e0e7ff',
  downsample: '#dcfce7',
  pool: '#f1f5f9',
  fc: '#fce7f3',
  io: '#e2e8f0',
  block: '#ffffff',
  stage: '#f8fafc',
};

/** The SVG being drawn: boxes (rect + text, tagged for tests and tooltips), arrows and labels. */
class Canvas {
  private readonly parts: string[] = [];

  /**
   * A box with `lines` of text, centred or left-aligned. `kind` and `names` (the state-dict
   * paths it shows) become data attributes; the names are also its tooltip.
   */
  box(x: number, y: number, width: number, height: number, style: { kind: string; names: string[]; fill: string; rounded?: boolean; align?: 'center' | 'left' }, lines: Line[]): void {
    const rx = style.rounded ? Math.min(height / 2, 14) : 4;
    const stroke = style.kind === 'stage' ? '#cbd5e1' : style.kind === 'block' ? '#94a3b8' : '#64748b';
    this.parts.push(
      `<g data-kind="${style.kind}" data-names="${escapeXml(style.names.join(' '))}">`,
      `<title>${escapeXml(style.names.join(', '))}</title>`,
      `<rect x="${round(x)}" y="${round(y)}" width="${round(width)}" height="${round(height)}" rx="${rx}" fill="${style.fill}" stroke="${stroke}"/>`,
    );
    let baseline = y + PAD;
    for (const line of lines) {
      const size = line.size ?? FONT_SIZE;
      const advance = Math.max(LINE_HEIGHT, size + 4);
      baseline += advance - 3;
      const weight = line.bold ? ' font-weight="bold"' : '';
      if (style.align === 'left') {
        this.parts.push(`<text x="${round(x + PAD)}" y="${round(baseline)}" font-size="${size}"${weight}>${escapeXml(line.text)}</text>`);
      } else {
        this.parts.push(`<text x="${round(x + width / 2)}" y="${round(baseline)}" font-size="${size}" text-anchor="middle"${weight}>${escapeXml(line.text)}</text>`);
      }
      if (line.right) {
        this.parts.push(`<text x="${round(x + width - PAD)}" y="${round(baseline)}" font-size="${size}" text-anchor="end"${weight}>${escapeXml(line.right)}</text>`);
      }
      baseline += 3;
    }
    this.parts.push('</g>');
  }

  /** A polyline with an arrowhead at its last point. */
  arrow(points: [number, number][], options: { dashed?: boolean; head?: boolean } = {}): void {
    const d = points.map(([px, py], i) => `${i === 0 ? 'M' : 'L'}${round(px)},${round(py)}`).join(' ');
    const dash = options.dashed ? ' stroke-dasharray="4 3"' : '';
    const head = options.head === false ? '' : ' marker-end="url(#arrow)"';
    this.parts.push(`<path d="${d}" fill="none" stroke="#475569" stroke-width="1.2"${dash}${head}/>`);
  }

  /** Free text (edge labels, titles); `x` is the start, or the middle with anchor 'middle'. */
  text(x: number, y: number, text: string, options: { size?: number; bold?: boolean; anchor?: 'middle'; color?: string; background?: boolean } = {}): void {
    const size = options.size ?? FONT_SIZE;
    if (options.background) {
      const width = textWidth(text, size) + 4;
      const left = options.anchor === 'middle' ? x - width / 2 : x - 2;
      this.parts.push(`<rect x="${round(left)}" y="${round(y - size)}" width="${round(width)}" height="${size + 4}" fill="#ffffff"/>`);
    }
    const anchor = options.anchor ? ` text-anchor="${options.anchor}"` : '';
    const weight = options.bold ? ' font-weight="bold"' : '';
    const color = options.color ? ` fill="${options.color}"` : '';
    this.parts.push(`<text x="${round(x)}" y="${round(y)}" font-size="${size}"${anchor}${weight}${color}>${escapeXml(text)}</text>`);
  }

  /** The ⊕ where the residual branch and the shortcut meet. */
  plus(cx: number, cy: number): void {
    const r = PLUS_RADIUS;
    this.parts.push(
      `<circle cx="${round(cx)}" cy="${round(cy)}" r="${r}" fill="#ffffff" stroke="#475569" stroke-width="1.2"/>`,
      `<path d="M${round(cx - r + 3)},${round(cy)} L${round(cx + r - 3)},${round(cy)} M${round(cx)},${round(cy - r + 3)} L${round(cx)},${round(cy + r - 3)}" stroke="#475569" stroke-width="1.2"/>`,
    );
  }

  toSvg(width: number, height: number, title: string): string {
    return [
      `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${round(width)} ${round(height)}" width="${round(width)}" height="${round(height)}" font-family="${escapeXml(FONT_FAMILY)}" fill="#0f172a">`,
      `<title>${escapeXml(title)}</title>`,
      '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" orient="auto-start-reverse">' +
        '<path d="M0,0 L8,4 L0,8 z" fill="#475569"/></marker></defs>',
      `<rect x="0" y="0" width="${round(width)}" height="${round(height)}" fill="#ffffff"/>`,
      ...this.parts,
      '</svg>',
      '',
    ].join('\n');
  }
}

// --- what the figure shows, read from the model and its traced summary -----------------------

/** "C×H×W" for one image (the batch dimension dropped). */
function shapeText(shape: readonly number[] | null): string {
  return shape ? shape.slice(1).join('×') : '—';
}

function paramsText(n: number): string {
  return `${formatCount(n)} params`;
}

/** The paper's notation: "3×3 conv, 128, /2", plus groups and dilation where they are not 1. */
function convText(conv: Conv2d): string {
  const [kh, kw] = conv.kernelSize;
  let s = `${kh}×${kw} conv, ${conv.outChannels}`;
  if (conv.stride[0] !== 1 || conv.stride[1] !== 1) s += `, /${conv.stride[0]}`;
  if (conv.groups !== 1) s += `, g${conv.groups}`;
  if (conv.dilation[0] !== 1) s += `, d${conv.dilation[0]}`;
  return s;
}

function convFill(conv: Conv2d): string {
  const [kh, kw] = conv.kernelSize;
  if (kh !== kw) return FILL.convOther;
  return FILL[`conv${kh}x${kw}`] ?? FILL.convOther;
}

/** A box in a column: its text and what it names. */
interface Unit {
  kind: string;
  names: string[];
  fill: string;
  lines: Line[];
  rounded?: boolean;
}

/** Summary rows by module name. */
type Rows = ReadonlyMap<string, LayerSummary>;

function row(rows: Rows, name: string): LayerSummary {
  const r = rows.get(name);
  if (!r) throw new Error(`diagram: no summary row for '${name}'`);
  return r;
}

/** A convolution and the norm after it as one box ("BN · ReLU" when a ReLU follows). */
function convNormUnit(rows: Rows, conv: Conv2d, convName: string, normName: string, after: string, repeats: string[] = []): Unit {
  const params = row(rows, convName).params + row(rows, normName).params;
  return {
    kind: 'conv',
    names: [convName, normName, ...repeats],
    fill: convFill(conv),
    lines: [{ text: convText(conv) }, { text: after }, { text: `→ ${shapeText(row(rows, normName).outputShape)}` }, { text: paramsText(params) }],
  };
}

/** A run of consecutive blocks that are drawn once: the same convolutions and output shape. */
interface BlockGroup {
  names: string[];
  block: BasicBlock | Bottleneck;
}

function blockSignature(block: BasicBlock | Bottleneck, rows: Rows, name: string): string {
  const convs = [...block.modules()].filter((m): m is Conv2d => m instanceof Conv2d);
  return JSON.stringify([block.typeName, convs.map(convText), convs.map((c) => c.inChannels), row(rows, name).outputShape, row(rows, name).params]);
}

function groupBlocks(stage: Sequential, stageName: string, rows: Rows): BlockGroup[] {
  const groups: BlockGroup[] = [];
  let previous = '';
  stage.layers.forEach((layer, i) => {
    if (!(layer instanceof BasicBlock || layer instanceof Bottleneck)) throw new TypeError(`diagram: ${stageName}.${i} is a ${layer.typeName}, not a ResNet block`);
    const name = `${stageName}.${i}`;
    const signature = blockSignature(layer, rows, name);
    if (signature === previous) groups[groups.length - 1].names.push(name);
    else groups.push({ names: [name], block: layer });
    previous = signature;
  });
  return groups;
}

// --- layout -------------------------------------------------------------------------------------

function unitSize(unit: Unit): { width: number; height: number } {
  return { width: linesWidth(unit.lines) + 2 * PAD, height: linesHeight(unit.lines) + 2 * PAD };
}

function drawUnit(canvas: Canvas, unit: Unit, x: number, y: number, width: number): number {
  const { height } = unitSize(unit);
  canvas.box(x, y, width, height, { kind: unit.kind, names: unit.names, fill: unit.fill, rounded: unit.rounded }, unit.lines);
  return height;
}

/** A group of blocks laid out: the residual path in a column, the shortcut lane to its right. */
class BlockLayout {
  readonly header: Line[];
  readonly units: Unit[];
  readonly shortcut: Unit | null;

  constructor(readonly group: BlockGroup, rows: Rows) {
    const { block, names } = group;
    const first = names[0];
    const repeats = names.length;
    const pairs: [Conv2d, string, string][] = [[block.conv1, 'conv1', 'bn1'], [block.conv2, 'conv2', 'bn2']];
    if (block instanceof Bottleneck) pairs.push([block.conv3, 'conv3', 'bn3']);
    this.units = pairs.map(([conv, convName, normName], i) =>
      convNormUnit(rows, conv, `${first}.${convName}`, `${first}.${normName}`, i < pairs.length - 1 ? 'BN · ReLU' : 'BN',
        names.slice(1).flatMap((n) => [`${n}.${convName}`, `${n}.${normName}`])));
    const params = row(rows, first).params;
    this.header = [
      repeats === 1
        ? { text: first, bold: true, size: HEADER_SIZE }
        : { text: `${first} – ${names[repeats - 1]}`, bold: true, size: HEADER_SIZE, right: `× ${repeats}` },
      { text: `${block.typeName} · ${paramsText(params)}${repeats > 1 ? ' each' : ''}` },
    ];
    if (block.downsample instanceof ShortcutA) {
      // Option A (He et al. 2015, §3.3): no parameters, the identity subsampled and zero-padded.
      const shortcut = block.downsample;
      this.shortcut = {
        kind: 'downsample',
        names: [`${first}.downsample`],
        fill: FILL.downsample,
        lines: [
          { text: 'shortcut A' },
          { text: `/${shortcut.stride}, pad ${shortcut.inPlanes}→${shortcut.planes}` },
          { text: `→ ${shapeText(row(rows, `${first}.downsample`).outputShape)}` },
          { text: paramsText(0) },
        ],
      };
    } else if (block.downsample) {
      const convName = `${first}.downsample.0`;
      const conv = [...block.downsample.modules()].find((m): m is Conv2d => m instanceof Conv2d);
      this.shortcut = {
        kind: 'downsample',
        names: [`${first}.downsample`],
        fill: FILL.downsample,
        lines: [
          { text: 'downsample' },
          { text: conv ? convText(conv) : block.downsample.typeName },
          { text: 'BN' },
          { text: `→ ${shapeText(row(rows, `${first}.downsample`).outputShape)}` },
          { text: paramsText(row(rows, `${first}.downsample`).params) },
        ],
      };
      if (conv && !rows.has(convName)) throw new Error(`diagram: no summary row for '${convName}'`);
    } else {
      this.shortcut = null;
    }
  }

  get mainWidth(): number {
    return Math.max(...this.units.map((u) => unitSize(u).width));
  }

  get laneWidth(): number {
    return Math.max(this.shortcut ? unitSize(this.shortcut).width : 0, textWidth('identity') + 8);
  }

  headerHeight(): number {
    return linesHeight(this.header) + PAD + 4;
  }

  /** Height with the residual path stacked; the shortcut box must fit beside it. */
  height(): number {
    const main = this.units.reduce((h, u) => h + unitSize(u).height, 0) + ARROW_GAP * (this.units.length - 1);
    const lane = this.shortcut ? unitSize(this.shortcut).height + 2 * ARROW_GAP : 0;
    return this.headerHeight() + ARROW_GAP + Math.max(main, lane) + ARROW_GAP + 2 * PLUS_RADIUS + ARROW_GAP + 4;
  }

  width(mainWidth: number, laneWidth: number): number {
    return Math.max(PAD + mainWidth + 2 * PAD + laneWidth + PAD, linesWidth(this.header) + 2 * PAD);
  }

  /** Draws the block at (x, y) with the stage's shared column widths; returns its height. */
  draw(canvas: Canvas, x: number, y: number, mainWidth: number, laneWidth: number): number {
    const height = this.height();
    const width = this.width(mainWidth, laneWidth);
    canvas.box(x, y, width, height, { kind: 'block', names: this.group.names, fill: FILL.block, align: 'left' }, this.header);
    const mainX = x + PAD;
    const cx = mainX + mainWidth / 2;
    const laneX = mainX + mainWidth + 2 * PAD;
    const laneCx = laneX + laneWidth / 2;
    const branchY = y + this.headerHeight();
    const plusY = y + height - ARROW_GAP - 4 - PLUS_RADIUS;

    // Residual path: conv units top to bottom, then ⊕.
    let top = branchY + ARROW_GAP;
    canvas.arrow([[cx, branchY], [cx, top]]);
    this.units.forEach((unit, i) => {
      const h = drawUnit(canvas, unit, mainX, top, mainWidth);
      const next = i < this.units.length - 1 ? top + h + ARROW_GAP : plusY - PLUS_RADIUS;
      canvas.arrow([[cx, top + h], [cx, next]]);
      top = top + h + ARROW_GAP;
    });

    // Shortcut: from the block's input along the lane into ⊕.
    if (this.shortcut) {
      const h = unitSize(this.shortcut).height;
      const boxY = (branchY + plusY) / 2 - h / 2;
      canvas.arrow([[cx, branchY], [laneCx, branchY], [laneCx, boxY]]);
      drawUnit(canvas, this.shortcut, laneX, boxY, laneWidth);
      canvas.arrow([[laneCx, boxY + h], [laneCx, plusY], [cx + PLUS_RADIUS, plusY]]);
    } else {
      canvas.arrow([[cx, branchY], [laneCx, branchY], [laneCx, plusY], [cx + PLUS_RADIUS, plusY]], { dashed: true });
      canvas.text(laneCx, (branchY + plusY) / 2 + 4, 'identity', { anchor: 'middle', background: true, color: '#475569' });
    }
    canvas.plus(cx, plusY);
    canvas.arrow([[cx, plusY + PLUS_RADIUS], [cx, y + height]]);
    canvas.text(cx + 6, plusY + PLUS_RADIUS + 13, 'ReLU', { color: '#475569' });
    return height;
  }
}

/** A stage: a container with a header, holding block groups (or plain units, for the stem and head) top to bottom. */
interface StageContent {
  kind: 'stage';
  name: string;
  header: Line[];
  groups: BlockLayout[];
  units: Unit[];
}

type ColumnItem = StageContent | Unit;

function stageSize(stage: StageContent): { width: number; height: number; mainWidth: number; laneWidth: number; headerHeight: number } {
  const headerHeight = linesHeight(stage.header) + PAD + 4;
  if (stage.groups.length > 0) {
    const mainWidth = Math.max(...stage.groups.map((g) => g.mainWidth));
    const laneWidth = Math.max(...stage.groups.map((g) => g.laneWidth));
    const inner = Math.max(...stage.groups.map((g) => g.width(mainWidth, laneWidth)));
    const heights = stage.groups.reduce((h, g) => h + g.height(), 0) + ARROW_GAP * (stage.groups.length + 1);
    return { width: Math.max(inner, linesWidth(stage.header)) + 2 * PAD, height: headerHeight + heights, mainWidth, laneWidth, headerHeight };
  }
  const mainWidth = Math.max(...stage.units.map((u) => unitSize(u).width));
  const heights = stage.units.reduce((h, u) => h + unitSize(u).height, 0) + ARROW_GAP * (stage.units.length + 1);
  return { width: Math.max(mainWidth, linesWidth(stage.header)) + 2 * PAD, height: headerHeight + heights, mainWidth, laneWidth: 0, headerHeight };
}

function itemSize(item: ColumnItem): { width: number; height: number } {
  return 'groups' in item ? stageSize(item) : unitSize(item);
}

/** The x of an item's flow line relative to its left edge: the residual path's centre. */
function itemCentre(item: ColumnItem): number {
  if (!('groups' in item)) return unitSize(item).width / 2;
  const size = stageSize(item);
  return item.groups.length > 0 ? 2 * PAD + size.mainWidth / 2 : PAD + size.mainWidth / 2;
}

/** Draws a stage container and its contents; `cx` is the flow line's x. */
function drawStage(canvas: Canvas, stage: StageContent, x: number, y: number, width: number): void {
  const size = stageSize(stage);
  canvas.box(x, y, width, size.height, { kind: 'stage', names: [stage.name], fill: FILL.stage, align: 'left' }, stage.header);
  const cx = x + itemCentre(stage);
  let top = y + size.headerHeight;
  const next = (height: number, last: boolean): void => {
    canvas.arrow([[cx, top], [cx, top + ARROW_GAP]]);
    top += ARROW_GAP + height;
    if (last) canvas.arrow([[cx, top], [cx, top + ARROW_GAP]], { head: false });
  };
  if (stage.groups.length > 0) {
    stage.groups.forEach((group, i) => {
      const h = group.draw(canvas, x + PAD, top + ARROW_GAP, size.mainWidth, size.laneWidth);
      next(h, i === stage.groups.length - 1);
    });
  } else {
    stage.units.forEach((unit, i) => {
      const h = drawUnit(canvas, unit, x + PAD, top + ARROW_GAP, size.mainWidth);
      next(h, i === stage.units.length - 1);
    });
  }
}

export interface DiagramOptions {
  /** The heading; the class name of the model by default (pass the builder's name). */
  title?: string;
}

/**
 * The figure for `model` at input (C, H, W) as a standalone SVG document: stem, the four
 * stages and the head in columns, every block (repeated identical blocks once, "× N") with
 * its convolutions, shortcut, output shapes and parameter counts from `summarize`.
 */
export function drawDiagram(model: AnyResNet, input: readonly number[] = [3, 224, 224], options: DiagramOptions = {}): string {
  if (input.length !== 3) throw new RangeError(`diagram input must be (C, H, W), got [${input.join(', ')}]`);
  const summary = summarize(model, [1, ...input]);
  const rows: Rows = new Map(summary.layers.map((l) => [l.name, l]));
  const title = options.title ?? model.typeName;
  const stageRow = (name: string): LayerSummary => row(rows, name);

  // Column 0: the input and the stem.
  const stem: StageContent = {
    kind: 'stage',
    name: 'stem',
    header: [{ text: 'stem', bold: true, size: HEADER_SIZE }, { text: paramsText(['conv1', 'bn1'].reduce((n, k) => n + stageRow(k).params, 0)) }],
    groups: [],
    units: [
      convNormUnit(rows, model.conv1, 'conv1', 'bn1', 'BN · ReLU'),
      // The CIFAR ResNets have no max pool: their 3×3 stem keeps the map's size.
      ...(model instanceof ResNet
        ? [{
          kind: 'pool',
          names: ['maxpool'],
          fill: FILL.pool,
          lines: [
            { text: `${model.maxpool.kernelSize.join('×')} max pool, /${model.maxpool.stride[0]}` },
            { text: `→ ${shapeText(stageRow('maxpool').outputShape)}` },
            { text: paramsText(0) },
          ],
        } satisfies Unit]
        : []),
    ],
  };
  const inputUnit: Unit = { kind: 'io', names: ['input'], fill: FILL.io, rounded: true, lines: [{ text: 'input', bold: true }, { text: input.join('×') }] };

  // Columns 1–4 (1–3): the stages.
  const stageNames = model instanceof ResNet ? (['layer1', 'layer2', 'layer3', 'layer4'] as const) : (['layer1', 'layer2', 'layer3'] as const);
  const stages: StageContent[] = stageNames.map((name) => {
    const stage = (model as ResNet)[name];
    const groups = groupBlocks(stage, name, rows).map((g) => new BlockLayout(g, rows));
    const blockType = stage.layers[0].typeName;
    return {
      kind: 'stage',
      name,
      header: [
        { text: name, bold: true, size: HEADER_SIZE, right: `→ ${shapeText(stageRow(name).outputShape)}` },
        { text: `${stage.length} × ${blockType} · ${paramsText(stageRow(name).params)}` },
      ],
      groups,
      units: [],
    };
  });

  // Column 5: the head and the output.
  const avgpoolShape = stageRow('avgpool').outputShape;
  const head: StageContent = {
    kind: 'stage',
    name: 'head',
    header: [{ text: 'head', bold: true, size: HEADER_SIZE }, { text: paramsText(stageRow('fc').params) }],
    groups: [],
    units: [
      { kind: 'pool', names: ['avgpool'], fill: FILL.pool, lines: [{ text: `avg pool → ${model.avgpool.outputSize.join('×')}` }, { text: `→ ${shapeText(avgpoolShape)}` }, { text: paramsText(0) }] },
      { kind: 'flatten', names: ['flatten'], fill: FILL.pool, lines: [{ text: 'flatten' }, { text: `→ ${avgpoolShape ? avgpoolShape.slice(1).reduce((a, b) => a * b, 1) : '—'}` }] },
      { kind: 'fc', names: ['fc'], fill: FILL.fc, lines: [{ text: `fc, ${model.fc.outFeatures}` }, { text: `→ ${shapeText(stageRow('fc').outputShape)}` }, { text: paramsText(stageRow('fc').params) }] },
    ],
  };
  const outputUnit: Unit = { kind: 'io', names: ['output'], fill: FILL.io, rounded: true, lines: [{ text: 'logits', bold: true }, { text: shapeText(summary.outputShape) }] };

  const columns: ColumnItem[][] = [[inputUnit, stem], ...stages.map((s) => [s]), [head, outputUnit]];

  // Title block, then the columns side by side, top-aligned, the flow line of each column
  // shared by its items; a connector runs from the bottom of one column to the top of the next.
  const canvas = new Canvas();
  const heading = `${title} · input ${input.join('×')} · ${formatCount(summary.totalParams)} params (${formatScaled(summary.totalParams)}) · ${formatScaled(summary.totalMacs)}MACs`;
  const legend = 'shapes are C×H×W of one image · /2 stride 2 · gN groups · dN dilation · parameters of each box';
  canvas.text(MARGIN, MARGIN + TITLE_SIZE, heading, { size: TITLE_SIZE, bold: true });
  canvas.text(MARGIN, MARGIN + TITLE_SIZE + 20, legend, { color: '#475569' });
  const top = MARGIN + TITLE_SIZE + 20 + 2 * ARROW_GAP + 8;

  let x = MARGIN;
  let bottom = top;
  let previousExit: [number, number] | null = null;
  let previousRight = 0;
  for (const column of columns) {
    const centre = Math.max(...column.map(itemCentre));
    const right = Math.max(...column.map((item) => itemSize(item).width - itemCentre(item)));
    const cx = x + centre;
    if (previousExit) {
      // Down from the last column, along the gutter, over the top, into this one.
      const gutterX = (previousRight + x) / 2;
      canvas.arrow([previousExit, [previousExit[0], previousExit[1] + ARROW_GAP], [gutterX, previousExit[1] + ARROW_GAP], [gutterX, top - ARROW_GAP], [cx, top - ARROW_GAP], [cx, top]]);
    }
    let y = top;
    column.forEach((item, i) => {
      const { width, height } = itemSize(item);
      const left = cx - itemCentre(item);
      if ('groups' in item) drawStage(canvas, item, left, y, width);
      else drawUnit(canvas, item, left, y, width);
      y += height;
      if (i < column.length - 1) {
        canvas.arrow([[cx, y], [cx, y + ARROW_GAP]]);
        y += ARROW_GAP;
      }
    });
    previousExit = [cx, y];
    previousRight = cx + right;
    bottom = Math.max(bottom, y);
    x = cx + right + GUTTER;
  }
  const width = Math.max(x - GUTTER + MARGIN, MARGIN + textWidth(heading, TITLE_SIZE) + MARGIN, MARGIN + textWidth(legend) + MARGIN);
  return canvas.toSvg(width, bottom + ARROW_GAP + MARGIN, `${title}: ${formatCount(summary.totalParams)} parameters`);
}
