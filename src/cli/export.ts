// `resnet export <arch> --weights <file|URL|IMAGENET1K_V1|…> -o <file>`: a model with its
// weights as ONNX (for onnxruntime and friends), safetensors, or a torch.save .pth that
// torchvision's model loads. The state dict is checked against the model first, so every
// format holds exactly the tensors the model has, in torch's order (num_batches_tracked included).

import { writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { Option, type Command } from 'commander';
import type { Tensor } from '../core/tensor.js';
import { StateDictError } from '../nn/module.js';
import type { ResNet } from '../models/resnet.js';
import { loadWeights, resolveWeights } from '../weights/load.js';
import { exportOnnx } from '../tools/onnx.js';
import { writeSafetensors } from '../io/safetensors.js';
import { writeTorchStateDict } from '../io/torch-writer.js';
import { formatScaled } from '../tools/summary.js';
import type { CommandContext } from './preprocess.js';

/** The model options main.ts parses (addModelOptions) and builds from (buildModel). */
export interface ModelFlags {
  numClasses?: number;
  groups?: number;
  widthPerGroup?: number;
  replaceStrideWithDilation?: [boolean, boolean, boolean];
  zeroInitResidual?: boolean;
}

/** What main.ts lends a command that builds a model: its exit codes, argument parsers and model options. */
export interface ModelCommandContext extends CommandContext {
  readonly exit: { readonly usage: number; readonly file: number; readonly stateDict: number; readonly input: number };
  readonly parseArch: (value: string) => string;
  readonly addModelOptions: (command: Command) => Command;
  /** getModel with the flags; a bad combination is a usage error. */
  readonly buildModel: (arch: string, flags: ModelFlags) => ResNet;
}

const FORMATS = ['onnx', 'safetensors', 'pth'] as const;
type ExportFormat = (typeof FORMATS)[number];

const FORMAT_OF_EXTENSION: Readonly<Record<string, ExportFormat>> = { '.onnx': 'onnx', '.safetensors': 'safetensors', '.pth': 'pth', '.pt': 'pth' };

interface ExportFlags extends ModelFlags {
  weights: string;
  format?: ExportFormat;
  output: string;
  keepBatchnorm?: boolean;
}

/** The file's bytes in `format`; the model is in eval mode with its weights loaded. */
function encode(model: ResNet, arch: string, format: ExportFormat, keepBatchNorm: boolean): Uint8Array {
  switch (format) {
    case 'onnx':
      return exportOnnx(model, { foldBatchNorm: !keepBatchNorm, graphName: arch, metadata: { arch } });
    case 'safetensors':
      return writeSafetensors(model.stateDict(), { format: 'pt' });
    case 'pth':
      return writeTorchStateDict(model.stateDict());
  }
}

/**
 * The model with the weights a builder's `weights` option takes (file, URL or torchvision name),
 * in eval mode. Loaded here rather than through getModel so that each failure keeps its exit
 * code and the class count can come from the file.
 */
export async function buildModelWithWeights(arch: string, opts: ModelFlags & { weights: string }, context: ModelCommandContext): Promise<ResNet> {
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
    throw context.error((e as Error).message, context.exit.file); // the loaders' messages name the file or URL
  }
  // A fine-tuned classifier exports without --num-classes: fc.weight says how many.
  const fcWeight = stateDict.get('fc.weight');
  const numClasses = opts.numClasses ?? (fcWeight?.ndim === 2 ? fcWeight.shape[0] : undefined);
  const model = context.buildModel(arch, { ...opts, numClasses });
  try {
    model.loadStateDict(stateDict);
  } catch (e) {
    if (e instanceof StateDictError) throw context.error(e.message.replace(/\n\t/g, ' '), context.exit.stateDict);
    throw e;
  }
  model.eval();
  return model;
}

async function exportCommand(arch: string, opts: ExportFlags, context: ModelCommandContext): Promise<void> {
  const format = opts.format ?? FORMAT_OF_EXTENSION[extname(opts.output).toLowerCase()];
  if (format === undefined) {
    throw context.error(`cannot tell the format from '${opts.output}'; pass --format ${FORMATS.join('|')}`, context.exit.usage);
  }
  if (opts.keepBatchnorm && format !== 'onnx') throw context.error('--keep-batchnorm applies to --format onnx only', context.exit.usage);

  const model = await buildModelWithWeights(arch, opts, context);

  const bytes = encode(model, arch, format, opts.keepBatchnorm ?? false);
  try {
    await writeFile(opts.output, bytes);
  } catch (e) {
    throw context.error(`cannot write output '${opts.output}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, context.exit.file);
  }
  process.stderr.write(`${arch}: ${format}, ${formatScaled(bytes.length)}B, written to ${opts.output}\n`);
}

/** Adds `export` to the `resnet` program. */
export function registerExportCommand(program: Command, context: ModelCommandContext): Command {
  const command = program
    .command('export')
    .description('write a model with its weights as ONNX (opset 17, dynamic batch and size), safetensors, or a torch.save .pth')
    .argument('<arch>', 'architecture, as for summary', context.parseArch)
    .requiredOption('--weights <file|url|name>', 'state dict: .pth or .safetensors file, http(s) URL, or torchvision weights name (IMAGENET1K_V1, DEFAULT, …)')
    .requiredOption('-o, --output <file>', 'where to write the model')
    .addOption(new Option('--format <format>', 'output format (default: from the extension of --output)').choices(FORMATS))
    .option('--keep-batchnorm', 'ONNX: BatchNormalization nodes instead of folding BatchNorm into the convolutions');
  return context
    .addModelOptions(command)
    .addHelpText('after', context.exitHelp)
    .action((arch: string, opts: ExportFlags) => exportCommand(arch, opts, context));
}
