// The `resnet` command line: `summary` tabulates a model layer by layer, `run` applies a
// model with weights from a torch or safetensors file to an .npy tensor, `bench` times forward
// passes on a backend. Errors are one line on stderr with an exit code that says what went
// wrong (see EXIT below).

import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { Tensor, shapeToString } from '../core/tensor.js';
import { AUTO_ORDER, BackendSettingError, listBackends, nativeUnavailableReason, setBackend, type Backend } from '../backends/index.js';
import { ShapeError } from '../ops/functional.js';
import { noGrad } from '../ops/autograd.js';
import { getModel, isModelName, listModels, type BuilderOptions } from '../models/builders.js';
import { formatSummary, summarize } from '../tools/summary.js';
import { benchmarkModel, formatProgress, type BenchProgress } from '../tools/bench.js';
import { readNpy, writeNpy } from '../io/npy.js';
import { WeightFileError } from '../io/errors.js';
import { registerPreprocessCommand } from './preprocess.js';
import { registerExportCommand } from './export.js';
import { registerDiagramCommand } from './diagram.js';
import { registerClassifyCommand } from './classify.js';
import { registerTrainCommands } from './train.js';
import { buildModelWithWeights, type ModelCommandContext, type ModelFlags } from './model.js';
import { parsePositiveInt } from './args.js';

/** Exit codes: each says what kind of failure it was. */
export const EXIT = {
  ok: 0,
  /** Anything unexpected: a bug in resnet-ts. */
  internal: 1,
  /** Bad command-line arguments or option combinations. */
  usage: 2,
  /** A file that is missing, unreadable, corrupt, or refused as hostile. */
  file: 3,
  /** A state dict that does not fit the model (missing, unexpected or mis-shaped keys). */
  stateDict: 4,
  /** An input tensor the model cannot take (wrong shape or channel count, too small). */
  input: 5,
} as const;

class CliError extends Error {
  /** What --json prints on stdout besides the one-line message (e.g. every mismatched key). */
  constructor(message: string, readonly exitCode: number, readonly details?: Record<string, unknown>) {
    super(message);
  }
}

const EXIT_HELP = `
Exit codes:
  0  success
  1  internal error
  2  bad arguments
  3  missing, corrupt or refused file
  4  state dict does not fit the model
  5  input the model cannot take
`;

function parseNonNegativeInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be a non-negative integer.`);
    return n;
  };
}

/** "3x224x224" → [3, 224, 224]. */
function parseInputShape(value: string): [number, number, number] {
  const parts = value.toLowerCase().split(/[x×,]/);
  if (parts.length !== 3 || parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1)) {
    throw new InvalidArgumentError('expected CxHxW with positive integers, e.g. 3x224x224.');
  }
  return parts.map(Number) as [number, number, number];
}

function parseBooleanTriple(value: string): [boolean, boolean, boolean] {
  const parts = value.split(',').map((p) => p.trim().toLowerCase());
  if (parts.length !== 3 || parts.some((p) => p !== 'true' && p !== 'false')) {
    throw new InvalidArgumentError('expected three comma-separated booleans, e.g. false,true,true.');
  }
  return parts.map((p) => p === 'true') as [boolean, boolean, boolean];
}

function parseArch(value: string): string {
  if (!isModelName(value)) throw new InvalidArgumentError(`unknown architecture; choose one of ${listModels().join(', ')}.`);
  return value;
}

function addModelOptions(command: Command): Command {
  return command
    .option('--num-classes <n>', 'number of output classes', parsePositiveInt('--num-classes'))
    .option('--groups <n>', 'groups of the 3×3 bottleneck convolutions', parsePositiveInt('--groups'))
    .option('--width-per-group <n>', 'channels per group of the bottleneck', parsePositiveInt('--width-per-group'))
    .option('--replace-stride-with-dilation <b,b,b>', 'dilate layer2/3/4 instead of striding, e.g. false,true,true', parseBooleanTriple)
    .option('--zero-init-residual', 'zero-initialise the last norm layer of each block')
    .option('--in-channels <n>', 'channels of the input images conv1 takes (default: 3, or the --input shape\'s, or the weights\')', parsePositiveInt('--in-channels'));
}

function buildModel(arch: string, flags: ModelFlags) {
  const options: BuilderOptions = {
    numClasses: flags.numClasses,
    groups: flags.groups,
    widthPerGroup: flags.widthPerGroup,
    replaceStrideWithDilation: flags.replaceStrideWithDilation,
    zeroInitResidual: flags.zeroInitResidual,
    inChannels: flags.inChannels,
  };
  try {
    return getModel(arch, options);
  } catch (e) {
    throw new CliError((e as Error).message, EXIT.usage);
  }
}

/**
 * --backend on every command that computes: 'auto' (native, else wasm, else ref) or one of
 * those, built here or not (selectBackend says why one is missing); RESNET_BACKEND sets it when
 * the flag is absent, as it does for the library.
 */
function addBackendOption(command: Command): Command {
  return command.addOption(
    new Option('--backend <name>', 'compute backend')
      .choices(['auto', ...AUTO_ORDER])
      .default('auto')
      .env('RESNET_BACKEND'),
  );
}

/** The backend --backend names, started; one this installation lacks is a usage error that says why. */
function selectBackend(name: string): Backend {
  if (name !== 'auto' && !listBackends().includes(name)) {
    const reason = name === 'native' ? nativeUnavailableReason() : undefined;
    throw new CliError(`--backend ${name} is not available here${reason ? `: ${reason}` : ''}`, EXIT.usage);
  }
  try {
    return setBackend(name);
  } catch (e) {
    throw new CliError(`--backend ${name} does not start: ${(e as Error).message}`, EXIT.usage);
  }
}

/** A context for the commands in other files: exit codes, errors, and the model options. */
const MODEL_CONTEXT: ModelCommandContext = {
  exitHelp: EXIT_HELP,
  exit: EXIT,
  error: (message, exitCode, details) => new CliError(message, exitCode, details),
  parseArch,
  addModelOptions,
  buildModel,
};

/** What `train` and `eval` take besides: the backend option and its selection with a thread count. */
const TRAIN_CONTEXT = {
  ...MODEL_CONTEXT,
  addBackendOption,
  selectBackend(name: string, threads?: number): void {
    const backend = selectBackend(name);
    warnOversubscription(threads);
    if (threads !== undefined) backend.setThreads(threads);
  },
};

/** More threads than cores are accepted (oversubscribing is a fair thing to measure), but rarely what was meant. */
function warnOversubscription(threads: number | undefined): void {
  const cores = availableParallelism();
  if (threads !== undefined && threads > cores) {
    process.stderr.write(`resnet: warning: --threads ${threads} is more than the ${cores} cores here; threads will share cores\n`);
  }
}

async function readInputFile(path: string): Promise<Tensor> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new CliError(`cannot read input '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.file);
  }
  try {
    return readNpy(bytes);
  } catch (e) {
    throw new CliError(`input '${path}': ${(e as Error).message}`, EXIT.file);
  }
}

async function summaryCommand(arch: string, opts: ModelFlags & { input: [number, number, number]; batch: number; json?: boolean; markdown?: boolean; depth?: number }): Promise<void> {
  const model = buildModel(arch, { ...opts, inChannels: opts.inChannels ?? opts.input[0] });
  const inputShape = [opts.batch, ...opts.input];
  let summary;
  try {
    summary = summarize(model, inputShape);
  } catch (e) {
    if (e instanceof ShapeError || e instanceof RangeError) throw new CliError(`input ${shapeToString(inputShape)}: ${e.message}`, EXIT.input);
    throw e;
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ arch, ...summary })}\n`);
  } else {
    process.stdout.write(`${formatSummary(summary, arch, { maxDepth: opts.depth ?? 2, markdown: opts.markdown })}\n`);
  }
}

async function runCommand(
  arch: string,
  opts: ModelFlags & { weights: string; input: string; output: string; backend: string; json?: boolean },
): Promise<void> {
  const backend = selectBackend(opts.backend);
  const model = await buildModelWithWeights(arch, opts, MODEL_CONTEXT);
  const x = await readInputFile(opts.input);
  if (x.dtype !== 'float32' || x.ndim !== 4) {
    throw new CliError(`input '${opts.input}' must be a float NCHW array, got ${x.dtype} of shape ${shapeToString(x.shape)}`, EXIT.input);
  }
  const start = performance.now();
  let y: Tensor;
  try {
    y = noGrad(() => model.call(x));
  } catch (e) {
    if (e instanceof ShapeError) throw new CliError(`input '${opts.input}': ${e.message}`, EXIT.input);
    throw e;
  }
  const ms = performance.now() - start;
  try {
    await writeFile(opts.output, writeNpy(y));
  } catch (e) {
    throw new CliError(`cannot write output '${opts.output}': ${(e as Error).message}`, EXIT.file);
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ arch, backend: backend.name, input: x.shape, output: y.shape, outputFile: opts.output, ms })}\n`);
  } else {
    process.stderr.write(`${arch}: ${shapeToString(x.shape)} → ${shapeToString(y.shape)} in ${ms.toFixed(0)} ms, written to ${opts.output}\n`);
  }
}

/** Progress on stderr: rewritten in place on a terminal, one line per run otherwise. */
function progressReporter(label: string): (p: BenchProgress) => void {
  const tty = process.stderr.isTTY;
  return (p) => process.stderr.write(tty ? `\r\x1b[K${formatProgress(label, p)}` : `${formatProgress(label, p)}\n`);
}

async function benchCommand(
  arch: string,
  opts: { batch: number; threads: number; backend: string; input: [number, number, number]; warmup: number; iterations?: number; json?: boolean; train?: boolean },
): Promise<void> {
  warnOversubscription(opts.threads);
  const label = `${arch} ${opts.train ? 'training step' : 'batch'} ${opts.train ? `batch ${opts.batch}` : opts.batch} on ${opts.backend}`;
  let result;
  try {
    result = await benchmarkModel({
      arch,
      batch: opts.batch,
      threads: opts.threads,
      backend: opts.backend,
      input: opts.input,
      warmup: opts.warmup,
      iterations: opts.iterations,
      train: opts.train,
      onProgress: progressReporter(label),
    });
  } catch (e) {
    if (e instanceof ShapeError || e instanceof RangeError) {
      throw new CliError(`input ${shapeToString([opts.batch, ...opts.input])}: ${e.message}`, EXIT.input);
    }
    throw e;
  } finally {
    if (process.stderr.isTTY) process.stderr.write('\n');
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    const threads = result.threadsSupported ? `${result.threads} thread${result.threads === 1 ? '' : 's'}` : '1 thread, no thread control';
    process.stdout.write(
      `${arch} ${opts.train ? 'training step, ' : ''}batch ${opts.batch} on ${result.backend} (${result.isa ? `${result.isa}, ` : ''}${threads}): median ${result.medianMs.toFixed(1)} ms, min ${result.minMs.toFixed(1)} ms over ${result.iterations} runs, ` +
        `${result.imagesPerSec.toFixed(2)} images/s, ${result.gflops.toFixed(1)} GFLOP/s\n`,
    );
  }
}

export function buildProgram(): Command {
  const program = new Command('resnet')
    .description('The torchvision ResNet family in TypeScript: summaries, inference, weights.')
    .version('0.1.0')
    .addHelpText('after', EXIT_HELP)
    .exitOverride();

  addModelOptions(
    program
      .command('summary')
      .description('each layer\'s output shape, parameter count and multiply-accumulates, with totals')
      .argument('<arch>', `architecture: ${listModels().join(', ')}`, parseArch)
      .option('--input <CxHxW>', 'input size', parseInputShape, [3, 224, 224] as [number, number, number])
      .option('--batch <n>', 'batch size', parsePositiveInt('--batch'), 1)
      .option('--depth <n>', 'show modules nested at most this deep (text table)', parsePositiveInt('--depth'))
      .option('--markdown', 'print the table as Markdown')
      .option('--json', 'print one JSON object with every module'),
  )
    .addHelpText('after', EXIT_HELP)
    .action(summaryCommand);

  addBackendOption(
    addModelOptions(
      program
        .command('run')
        .description('run a model in eval mode on an NCHW float32 .npy tensor and write the output .npy')
        .argument('<arch>', `architecture: ${listModels().join(', ')}`, parseArch)
        .requiredOption('--weights <file|url|name>', 'state dict: .pth (zip or legacy torch.save) or .safetensors file, http(s) URL, or torchvision weights name')
        .requiredOption('--input <x.npy>', 'input tensor (N, 3, H, W)')
        .requiredOption('--output <y.npy>', 'where to write the output (N, numClasses; numClasses from fc.weight unless given)')
        .option('--json', 'print a JSON line describing the run (on a state dict that does not fit: every key)'),
    ),
  )
    .addHelpText('after', EXIT_HELP)
    .action(runCommand);

  addBackendOption(
    program
      .command('bench')
      .description('time eval-mode forward passes, or training steps with --train (median and min of repeated runs after a warm-up)')
      .argument('<arch>', `architecture: ${listModels().join(', ')}`, parseArch)
      .option('--batch <n>', 'batch size', parsePositiveInt('--batch'), 1)
      .option('--threads <n>', 'threads, for backends that take a thread count', parsePositiveInt('--threads'), availableParallelism())
      .option('--input <CxHxW>', 'input size of one image', parseInputShape, [3, 224, 224] as [number, number, number])
      .option('--warmup <n>', 'untimed runs first', parseNonNegativeInt('--warmup'), 1)
      .option('--iterations <n>', 'timed runs (default: at least 5, until 3 s have passed)', parsePositiveInt('--iterations'))
      .option('--train', 'time training steps (forward, backward, SGD step in train mode) instead of inference')
      .option('--json', 'print the result as one JSON line, with the ISA the kernels ran (progress stays on stderr)'),
  )
    .addHelpText('after', EXIT_HELP)
    .action(benchCommand);

  registerPreprocessCommand(program, MODEL_CONTEXT);
  registerExportCommand(program, MODEL_CONTEXT);
  registerClassifyCommand(program, MODEL_CONTEXT);
  registerDiagramCommand(program, { ...MODEL_CONTEXT, parseInputShape });
  registerTrainCommands(program, TRAIN_CONTEXT);

  for (const command of program.commands) command.exitOverride();
  return program;
}

/** Runs the CLI and returns the exit code (it never calls process.exit itself). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version exit with 0; commander has already printed the message.
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (e instanceof CliError) {
      process.stderr.write(`resnet: ${e.message}\n`);
      if (e.details) process.stdout.write(`${JSON.stringify({ error: e.message, exitCode: e.exitCode, ...e.details })}\n`);
      return e.exitCode;
    }
    if (e instanceof WeightFileError) {
      process.stderr.write(`resnet: ${e.message}\n`);
      return EXIT.file;
    }
    if (e instanceof BackendSettingError) {
      // A setting in the environment (RESNET_NATIVE_ISA) that cannot be honoured: a usage error.
      process.stderr.write(`resnet: ${e.message}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`resnet: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT.internal;
  }
}
