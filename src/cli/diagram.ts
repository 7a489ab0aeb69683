// `resnet diagram <arch> [--input 3x224x224] [-o file.svg]`: the ResNet figure of a model as
// SVG (src/tools/diagram.ts), to a file or to stdout.

import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ShapeError } from '../ops/functional.js';
import { drawDiagram } from '../tools/diagram.js';
import type { ModelCommandContext, ModelFlags } from './model.js';

export interface DiagramCommandContext extends ModelCommandContext {
  /** "3x224x224" → [3, 224, 224]. */
  readonly parseInputShape: (value: string) => [number, number, number];
}

interface DiagramFlags extends ModelFlags {
  input: [number, number, number];
  output?: string;
}

async function diagramCommand(arch: string, opts: DiagramFlags, context: DiagramCommandContext): Promise<void> {
  const model = context.buildModel(arch, { ...opts, inChannels: opts.inChannels ?? opts.input[0] });
  let svg: string;
  try {
    svg = drawDiagram(model, opts.input, { title: arch });
  } catch (e) {
    if (e instanceof ShapeError || e instanceof RangeError) throw context.error(`input ${opts.input.join('×')}: ${e.message}`, context.exit.input);
    throw e;
  }
  if (opts.output === undefined) {
    process.stdout.write(svg);
    return;
  }
  try {
    await writeFile(opts.output, svg);
  } catch (e) {
    throw context.error(`cannot write output '${opts.output}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, context.exit.file);
  }
  process.stderr.write(`${arch}: diagram written to ${opts.output}\n`);
}

/** Adds `diagram` to the `resnet` program. */
export function registerDiagramCommand(program: Command, context: DiagramCommandContext): Command {
  const command = program
    .command('diagram')
    .description('the ResNet figure of a model as SVG: stages, blocks, convolutions, shortcuts, shapes and parameters')
    .argument('<arch>', 'architecture, as for summary', context.parseArch)
    .option('--input <CxHxW>', 'input size the shapes are traced at', context.parseInputShape, [3, 224, 224] as [number, number, number])
    .option('-o, --output <file.svg>', 'where to write the SVG (default: stdout)');
  return context
    .addModelOptions(command)
    .addHelpText('after', context.exitHelp)
    .action((arch: string, opts: DiagramFlags) => diagramCommand(arch, opts, context));
}
