// A model with its weights, as `run`, `classify` and `export` all build it: the weights (file,
// URL or torchvision name) loaded first, the class count taken from fc.weight unless given, and
// every failure a one-line error with the exit code that says what failed.

import type { Command } from 'commander';
import type { Tensor } from '../core/tensor.js';
import { StateDictError, stateDictHint, type LoadStateDictResult } from '../nn/module.js';
import type { AnyResNet } from '../models/builders.js';
import { loadWeights, resolveWeights } from '../weights/load.js';
import { DownloadError } from '../weights/errors.js';
import type { CommandContext } from './preprocess.js';

/** The model options main.ts parses (addModelOptions) and builds from (buildModel). */
export interface ModelFlags {
  numClasses?: number;
  groups?: number;
  widthPerGroup?: number;
  replaceStrideWithDilation?: [boolean, boolean, boolean];
  zeroInitResidual?: boolean;
  inChannels?: number;
}

/** What main.ts lends a command that builds a model: its exit codes, argument parsers and model options. */
export interface ModelCommandContext extends CommandContext {
  readonly exit: { readonly usage: number; readonly file: number; readonly stateDict: number; readonly input: number };
  readonly parseArch: (value: string) => string;
  readonly addModelOptions: (command: Command) => Command;
  /** getModel with the flags; a bad combination is a usage error. */
  readonly buildModel: (arch: string, flags: ModelFlags) => AnyResNet;
}

/** Keys of each kind a mismatch message names before "…"; --json gives them all. */
const KEYS_SHOWN = 3;

function firstFew(items: string[]): string {
  const shown = items.slice(0, KEYS_SHOWN).join(', ');
  return items.length > KEYS_SHOWN ? `${shown}, …` : shown;
}

/**
 * One line for a state dict that does not fit `arch`: the count of missing, unexpected and
 * mis-shaped keys, and the first few of each (the whole of torch's message for resnet18 weights
 * in a resnet50 runs to thousands of characters).
 */
export function describeStateDictMismatch(arch: string, r: LoadStateDictResult, more: string): string {
  const parts: string[] = [];
  if (r.missingKeys.length > 0) parts.push(`${r.missingKeys.length} missing (${firstFew(r.missingKeys)})`);
  if (r.unexpectedKeys.length > 0) parts.push(`${r.unexpectedKeys.length} unexpected (${firstFew(r.unexpectedKeys)})`);
  if (r.mismatchedKeys.length > 0) {
    const shapes = r.mismatchedKeys.map((m) => `${m.key} [${m.got.join(', ')}] vs [${m.expected.join(', ')}]`);
    parts.push(`${r.mismatchedKeys.length} of another shape, file vs model (${firstFew(shapes)})`);
  }
  const hint = stateDictHint(r);
  return `the state dict does not fit ${arch}: ${parts.join('; ')}${hint ? ` (${hint})` : ''}${more}`;
}

/** A failed download that no network explains (no HTTP status: unknown host, refused, offline). */
function isNetworkFailure(e: unknown): boolean {
  return e instanceof DownloadError && e.status === undefined && !/invalid hash/.test(e.message);
}

/**
 * The model with the weights a builder's `weights` option takes (file, URL or torchvision name),
 * in eval mode. Loaded here rather than through getModel so that each failure keeps its exit
 * code and the class count can come from the file. With `json`, a state dict that does not fit
 * carries every key in the error's details (main prints them as JSON on stdout).
 */
export async function buildModelWithWeights(
  arch: string, opts: ModelFlags & { weights: string; json?: boolean }, context: ModelCommandContext,
): Promise<AnyResNet> {
  let source;
  try {
    source = resolveWeights(arch, opts.weights);
  } catch (e) {
    throw context.error((e as Error).message, context.exit.usage); // a weight name the architecture lacks
  }
  let stateDict: Map<string, Tensor>;
  try {
    stateDict = await loadWeights(source, { progress: process.stderr.isTTY });
  } catch (e) {
    // The loaders' messages name the file or URL; offline, say what works without a network.
    const hint = isNetworkFailure(e) ? '; without network access, pass --weights <file> with a .pth or .safetensors file you have' : '';
    throw context.error(`${(e as Error).message}${hint}`, context.exit.file);
  }
  // A fine-tuned classifier needs no --num-classes: fc.weight says how many.
  const fcWeight = stateDict.get('fc.weight');
  const numClasses = opts.numClasses ?? (fcWeight?.ndim === 2 ? fcWeight.shape[0] : undefined);
  // …and a model for grey images none either: conv1.weight says how many channels.
  const conv1Weight = stateDict.get('conv1.weight');
  const inChannels = opts.inChannels ?? (conv1Weight?.ndim === 4 ? conv1Weight.shape[1] : undefined);
  const model = context.buildModel(arch, { ...opts, numClasses, inChannels });
  try {
    model.loadStateDict(stateDict);
  } catch (e) {
    if (!(e instanceof StateDictError)) throw e;
    const message = describeStateDictMismatch(arch, e.result, opts.json ? '' : '; --json lists every key');
    const { missingKeys, unexpectedKeys, mismatchedKeys } = e.result;
    throw context.error(message, context.exit.stateDict, opts.json ? { missingKeys, unexpectedKeys, mismatchedKeys } : undefined);
  }
  model.eval();
  return model;
}
