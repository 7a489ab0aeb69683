// `resnet preprocess <image> -o x.npy`: decodes a JPEG, PNG or WebP file and applies torchvision's
// ImageClassification preset (resize the shorter side, center-crop, normalise), writing the NCHW
// float32 tensor [1, 3, crop, crop] that `resnet run --input` takes.

import { writeFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { parsePositiveInt } from './args.js';
import { shapeToString } from '../core/tensor.js';
import { writeNpy } from '../io/npy.js';
import { ImageClassification, ImageFileError, readImage } from '../preprocess/index.js';

/** What main.ts lends the command: its help text on exit codes and its one-line error. */
export interface CommandContext {
  readonly exitHelp: string;
  readonly exit: { readonly file: number };
  /**
   * An error that main() prints as one line on stderr before exiting with `exitCode`; `details`,
   * if any, go to stdout as one JSON line (for --json).
   */
  readonly error: (message: string, exitCode: number, details?: Record<string, unknown>) => Error;
}

async function preprocessCommand(image: string, opts: { resize: number; crop: number; output: string }, context: CommandContext): Promise<void> {
  let pixels;
  try {
    pixels = await readImage(image);
  } catch (e) {
    if (e instanceof ImageFileError) throw context.error(e.message, context.exit.file);
    throw e;
  }
  const x = new ImageClassification({ resizeSize: opts.resize, cropSize: opts.crop }).forward(pixels);
  try {
    await writeFile(opts.output, writeNpy(x));
  } catch (e) {
    throw context.error(`cannot write output '${opts.output}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, context.exit.file);
  }
  process.stderr.write(`${image}: ${pixels.width}x${pixels.height} → ${shapeToString(x.shape)}, written to ${opts.output}\n`);
}

/** Adds `preprocess` to the `resnet` program. */
export function registerPreprocessCommand(program: Command, context: CommandContext): Command {
  return program
    .command('preprocess')
    .description("torchvision's ImageClassification preset on a JPEG, PNG or WebP file → NCHW float32 .npy [1, 3, crop, crop]")
    .argument('<image>', 'JPEG, PNG or WebP file, decoded as PIL decodes it and converted to RGB')
    .requiredOption('-o, --output <x.npy>', 'where to write the tensor')
    .option('--resize <n>', 'shorter side after resizing (256 for IMAGENET1K_V1 weights, 232 for V2)', parsePositiveInt('--resize'), 256)
    .option('--crop <n>', 'side of the center crop', parsePositiveInt('--crop'), 224)
    .addHelpText('after', context.exitHelp)
    .action((image: string, opts: { resize: number; crop: number; output: string }) => preprocessCommand(image, opts, context));
}
