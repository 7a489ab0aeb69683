// `resnet export <arch> --weights <file|URL|IMAGENET1K_V1|…> -o <file>`: a model with its
// weights as ONNX (for onnxruntime and friends), safetensors, or a torch.save .pth that
// torchvision's model loads. The state dict is checked against the model first, so every
// format holds exactly the tensors the model has, in torch's order (num_batches_tracked included).

import { writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { Option, type Command } from 'commander';
import type { AnyResNet } from '../models/builders.js';
import { exportOnnx } from '../tools/onnx.js';
import { writeSafetensors } from '../io/safetensors.js';
import { writeTorchStateDict } from '../io/torch-writer.js';
import { formatScaled } from '../tools/summary.js';
import { buildModelWithWeights, type ModelCommandContext, type ModelFlags } from './model.js';

const FORMATS = ['onnx', 'safetensors', 'pth'] as const;
type ExportFormat = (typeof FORMATS)[number];

const FORMAT_OF_EXTENSION: Readonly<Record<string, ExportFormat>> = { '.onnx': 'onnx', '.safetensors': 'safetensors', '.pth': 'pth', '.pt': 'pth' };

interface ExportFlags extends ModelFlags {
  weights: string;
  format?: ExportFormat;
  output: string;
  keepBatchnorm?: boolean;
  json?: boolean;
}

/** The file's bytes in `format`; the model is in eval mode with its weights loaded. */
function encode(model: AnyResNet, arch: string, format: ExportFormat, keepBatchNorm: boolean): Uint8Array {
  switch (format) {
    case 'onnx':
      return exportOnnx(model, { foldBatchNorm: !keepBatchNorm, graphName: arch, metadata: { arch } });
    case 'safetensors':
      return writeSafetensors(model.stateDict(), { format: 'pt' });
    case 'pth':
      return writeTorchStateDict(model.stateDict());
  }
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
  if (opts.json) process.stdout.write(`${JSON.stringify({ arch, format, bytes: bytes.length, output: opts.output })}\n`);
  else process.stderr.write(`${arch}: ${format}, ${formatScaled(bytes.length)}B, written to ${opts.output}\n`);
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
    .option('--keep-batchnorm', 'ONNX: BatchNormalization nodes instead of folding BatchNorm into the convolutions')
    .option('--json', 'print a JSON line describing the file written (on a state dict that does not fit: every key)');
  return context
    .addModelOptions(command)
    .addHelpText('after', context.exitHelp)
    .action((arch: string, opts: ExportFlags) => exportCommand(arch, opts, context));
}
