// The per-layer picture every ResNet explainer draws: each module's output shape,
// parameter count and multiply-accumulates, read from the trace of an eval-mode pass on
// data-less (meta) tensors (ops/trace.ts, the trace inference plans are built from), so it
// costs nothing even for the largest builders.

import { Tensor, shapeToString } from '../core/tensor.js';
import type { TracedOp } from '../ops/trace.js';
import { Module, traceEval } from '../nn/module.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, Sequential } from '../nn/layers.js';
import { BasicBlock, Bottleneck } from '../models/resnet.js';

export interface LayerSummary {
  /** Dotted module name as in the state dict ('' is the model itself). */
  name: string;
  type: string;
  /** Nesting depth: 1 for the model's direct children. */
  depth: number;
  /** Output shape of the module's last call; null if the forward pass never called it. */
  outputShape: number[] | null;
  /** Parameters of this module and all its descendants. */
  params: number;
  /** Multiply-accumulates of this module and all its descendants. */
  macs: number;
  /** Short description of the layer's configuration (kernel, stride, channels…). */
  detail: string;
}

export interface ModelSummary {
  inputShape: number[];
  outputShape: number[];
  layers: LayerSummary[];
  totalParams: number;
  trainableParams: number;
  /** Convolution and linear multiply-accumulates: the count torchvision publishes as "GFLOPS". */
  totalMacs: number;
}

/** Multiply-accumulates of one op (bias additions are not counted). */
function opMacs(op: TracedOp): number {
  if (op.kind === 'conv2d') {
    const [, groupChannels, kh, kw] = op.weight.shape; // (O, C/groups, kh, kw)
    return op.output.size * groupChannels * kh * kw;
  }
  if (op.kind === 'linear') return op.output.size * op.weight.shape[1]; // (O, I)
  return 0;
}

function describeConv(conv: Conv2d): string {
  const [kh, kw] = conv.kernelSize;
  let s = `${kh}×${kw}, ${conv.inChannels}→${conv.outChannels}`;
  if (conv.stride[0] !== 1 || conv.stride[1] !== 1) s += `, stride ${conv.stride[0]}`;
  if (conv.dilation[0] !== 1) s += `, dilation ${conv.dilation[0]}`;
  if (conv.groups !== 1) s += `, groups ${conv.groups}`;
  return s;
}

/** The configuration column: what an explainer writes next to each box. */
function describeLayer(module: Module): string {
  if (module instanceof Conv2d) return describeConv(module);
  if (module instanceof Linear) return `${module.inFeatures}→${module.outFeatures}`;
  if (module instanceof BatchNorm2d) return `${module.numFeatures}`;
  if (module instanceof MaxPool2d) return `${module.kernelSize[0]}×${module.kernelSize[1]}, stride ${module.stride[0]}`;
  if (module instanceof AdaptiveAvgPool2d) return `→ ${module.outputSize.join('×')}`;
  if (module instanceof BasicBlock || module instanceof Bottleneck) {
    const convs = module instanceof Bottleneck ? [module.conv1, module.conv2, module.conv3] : [module.conv1, module.conv2];
    const path = convs.map((c) => {
      let s = `${c.kernelSize[0]}×${c.kernelSize[1]} ${c.outChannels}`;
      if (c.stride[0] !== 1) s += `/${c.stride[0]}`;
      if (c.groups !== 1) s += ` g${c.groups}`;
      if (c.dilation[0] !== 1) s += ` d${c.dilation[0]}`;
      return s;
    });
    return `${path.join(' → ')}${module.downsample ? ', downsample' : ''}`;
  }
  if (module instanceof Sequential && module.length > 0) {
    const types = new Set(module.layers.map((m) => m.typeName));
    if (types.size === 1) return `${module.length} × ${module.layers[0].typeName}`;
  }
  return '';
}

/** Traces `model` in eval mode on an input of `inputShape` (N, C, H, W) and tabulates every module. */
export function summarize(model: Module, inputShape: readonly number[]): ModelSummary {
  const traced = traceEval(model, inputShape);
  // Each module's last output, and the MACs of the ops each module runs itself (not in a child).
  const outputs = new Map<object, Tensor>();
  const ownMacs = new Map<object, number>();
  const calls: object[] = [];
  for (const e of traced.events) {
    if (e.kind === 'enter') calls.push(e.scope);
    else if (e.kind === 'exit') outputs.set(calls.pop()!, e.output);
    else if (calls.length > 0) ownMacs.set(calls.at(-1)!, (ownMacs.get(calls.at(-1)!) ?? 0) + opMacs(e));
  }
  const output = traced.output;

  const layers: LayerSummary[] = [];
  const visit = (module: Module, name: string, depth: number): { params: number; macs: number } => {
    const row: LayerSummary = {
      name,
      type: module.typeName,
      depth,
      outputShape: outputs.has(module) ? [...outputs.get(module)!.shape] : null,
      params: 0,
      macs: 0,
      detail: describeLayer(module),
    };
    if (depth > 0) layers.push(row);
    let params = 0;
    for (const [, t] of module.namedParameters()) params += t.size;
    let macs = ownMacs.get(module) ?? 0;
    for (const [childName, child] of module.namedChildren()) {
      macs += visit(child, name ? `${name}.${childName}` : childName, depth + 1).macs;
    }
    row.params = params;
    row.macs = macs;
    return { params, macs };
  };
  const totals = visit(model, '', 0);
  return {
    inputShape: [...inputShape],
    outputShape: [...output.shape],
    layers,
    totalParams: totals.params,
    trainableParams: totals.params,
    totalMacs: totals.macs,
  };
}

const integer = new Intl.NumberFormat('en-US');

export function formatCount(n: number): string {
  return integer.format(n);
}

/** 4089184256 → "4.09 G". */
export function formatScaled(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)} K`;
  return String(n);
}

export interface FormatOptions {
  /** Show modules nested at most this deep (1 = the model's direct children). */
  maxDepth?: number;
  markdown?: boolean;
}

/** The summary as a text or Markdown table, with totals underneath. */
export function formatSummary(summary: ModelSummary, title: string, options: FormatOptions = {}): string {
  const maxDepth = options.maxDepth ?? Infinity;
  const rows = summary.layers
    .filter((l) => l.depth <= maxDepth)
    .map((l) => [
      options.markdown ? l.name : `${'  '.repeat(l.depth - 1)}${l.name}`,
      l.type,
      l.detail,
      l.outputShape ? shapeToString(l.outputShape) : '—',
      formatCount(l.params),
      formatCount(l.macs),
    ]);
  const header = ['Layer', 'Type', 'Configuration', 'Output shape', 'Params', 'MACs'];
  const numeric = [false, false, false, false, true, true];
  const totals = [
    `Input: ${shapeToString(summary.inputShape)}  Output: ${shapeToString(summary.outputShape)}`,
    `Total params: ${formatCount(summary.totalParams)} (${formatScaled(summary.totalParams)})`,
    `Total MACs: ${formatCount(summary.totalMacs)} (${formatScaled(summary.totalMacs)}MACs)`,
  ];
  if (options.markdown) {
    const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
    const rule = `|${numeric.map((n) => (n ? '---:' : ':---')).join('|')}|`;
    return [`**${title}**`, '', line(header), rule, ...rows.map(line), '', ...totals.map((t) => `${t}  `)].join('\n');
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const pad = (cells: string[]): string =>
    cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  const rule = '─'.repeat(widths.reduce((a, b) => a + b + 2, -2));
  return [title, rule, pad(header), rule, ...rows.map(pad), rule, ...totals].join('\n');
}
