// `resnet train` and `resnet eval`: training and evaluating a ResNet on an image folder or on
// Fashion-MNIST, with a progress bar on stderr (loss, accuracy, images/s, ETA), validation
// after every epoch, and the run's files in --out (src/train). `--json` prints one JSON line
// per epoch (train) or the result (eval) on stdout.

import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parsePositiveInt } from './args.js';
import type { Tensor } from '../core/tensor.js';
import { readSafetensorsMetadata } from '../io/safetensors.js';
import { DataLoader } from '../data/index.js';
import { decodeModelMetadata } from '../train/checkpoint.js';
import { loadTrainData } from '../train/data.js';
import { evaluate, train, type EpochRecord, type TrainOptions } from '../train/trainer.js';
import { buildModelWithWeights, type ModelCommandContext } from './model.js';

function parsePositiveNumber(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number.`);
    return n;
  };
}

function parseNonNegativeNumber(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number.`);
    return n;
  };
}

function parseFraction(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError(`${name} must be in [0, 1).`);
    return n;
  };
}

function parseInteger(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be an integer.`);
    return n;
  };
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function formatRecord(r: EpochRecord, epochs: number, best: boolean): string {
  return (
    `epoch ${r.epoch}/${epochs}: train loss ${r.trainLoss.toFixed(4)} acc ${(r.trainAccuracy * 100).toFixed(2)}% · ` +
    `val loss ${r.valLoss.toFixed(4)} acc ${(r.valAccuracy * 100).toFixed(2)}%${best ? ' (best)' : ''} · ` +
    `${r.imagesPerSecond.toFixed(0)} images/s · ${formatDuration(r.seconds)}`
  );
}

/** The options as commander parses them: the run's own, and where it runs. */
interface TrainFlags extends TrainOptions {
  freezeBackbone?: boolean;
  resume?: boolean;
  backend: string;
  threads?: number;
  json?: boolean;
}

/** A progress bar on a terminal (cli-progress), else nothing until the epoch's line. */
async function progressBar(enabled: boolean): Promise<{ update(line: string, value: number, total: number): void; stop(): void }> {
  if (!enabled) return { update: () => undefined, stop: () => undefined };
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    { format: '{label} |{bar}| {value}/{total} {line} ETA {eta_formatted}', stream: process.stderr, hideCursor: true, clearOnComplete: true, etaBuffer: 50 },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(line, value, total) {
      const [label, rest] = line.split('\t');
      if (!started) {
        bar.start(total, value, { label, line: rest });
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(value, { label, line: rest });
      }
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}

async function trainCommand(opts: TrainFlags, context: ModelCommandContext & { selectBackend(name: string, threads?: number): void }): Promise<void> {
  if (opts.freezeBackbone && opts.weights === undefined && !opts.resume) {
    throw context.error('--freeze-backbone needs --weights: a backbone trained from scratch would stay at its random initialisation', context.exit.usage);
  }
  context.selectBackend(opts.backend, opts.threads);
  const { resume: _resume, backend: _backend, threads: _threads, json: _json, ...given } = opts;
  const options: TrainOptions = { ...given, arch: context.parseArch(opts.arch), freezeBackbone: opts.freezeBackbone ?? false };
  const bar = await progressBar(process.stderr.isTTY);
  let epochs = options.epochs;
  try {
    const result = await train(
      options,
      {
        onStart(info) {
          epochs = info.epochs;
          const from = info.startEpoch ? `, resuming after epoch ${info.startEpoch}` : '';
          process.stderr.write(
            `${options.arch}: ${info.trainImages} training and ${info.valImages} validation images, ${info.classes.length} classes, ` +
              `${info.stepsPerEpoch} steps an epoch${from}\n`,
          );
        },
        onStep(s) {
          bar.update(`epoch ${s.epoch}/${epochs}\tloss ${s.loss.toFixed(4)} acc ${(s.accuracy * 100).toFixed(2)}% ${s.imagesPerSecond.toFixed(0)} img/s lr ${s.lr.toPrecision(3)}`, s.step, s.steps);
        },
        onValidate() {
          bar.stop();
        },
        onEpoch(record, best) {
          bar.stop();
          process.stderr.write(`${formatRecord(record, epochs, best)}\n`);
          if (opts.json) process.stdout.write(`${JSON.stringify({ ...record, best })}\n`);
        },
      },
      opts.resume ?? false,
    );
    process.stderr.write(`best validation accuracy ${(result.bestAccuracy * 100).toFixed(2)}%; weights in ${options.out}/best.safetensors (and .pth)\n`);
  } catch (e) {
    bar.stop();
    const message = (e as Error).message;
    if (/^--(data|resume|weights|freeze-backbone)|Fashion-MNIST|ImageFolder|no parameter requires/.test(message) || (e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw context.error(message, context.exit.file);
    }
    if (e instanceof RangeError) throw context.error(message, context.exit.usage);
    throw e;
  }
}

interface EvalFlags {
  arch?: string;
  weights: string;
  data: string;
  batchSize: number;
  imageSize?: number;
  grayscale?: boolean;
  limit?: number;
  backend: string;
  threads?: number;
  json?: boolean;
  numClasses?: number;
}

async function evalCommand(opts: EvalFlags, context: ModelCommandContext & { selectBackend(name: string, threads?: number): void }): Promise<void> {
  context.selectBackend(opts.backend, opts.threads);
  // A training run's weights say their architecture; --arch is needed for anything else.
  let arch = opts.arch;
  let grayscale = opts.grayscale;
  if (opts.weights.endsWith('.safetensors')) {
    const bytes = await readFile(opts.weights).catch((e: Error) => {
      throw context.error(`cannot read --weights ${opts.weights}: ${e.message}`, context.exit.file);
    });
    const meta = decodeModelMetadata(readSafetensorsMetadata(bytes));
    if (meta && arch && meta.arch !== arch) throw context.error(`--weights ${opts.weights} holds a ${meta.arch}, not a ${arch}`, context.exit.usage);
    arch ??= meta?.arch;
    grayscale ??= meta?.inChannels === 1;
  }
  if (!arch) throw context.error('--arch is needed: the weights do not say their architecture', context.exit.usage);
  let data;
  try {
    data = await loadTrainData(opts.data, { imageSize: opts.imageSize, limit: opts.limit, grayscale });
  } catch (e) {
    throw context.error((e as Error).message, context.exit.file);
  }
  const model = await buildModelWithWeights(context.parseArch(arch), { weights: opts.weights, json: opts.json, numClasses: opts.numClasses, inChannels: data.inChannels }, context);
  if (model.fc.outFeatures !== data.classes.length) {
    throw context.error(`the model has ${model.fc.outFeatures} classes, the data ${data.classes.length}`, context.exit.stateDict);
  }
  const loader = new DataLoader<Tensor>(data.val, { batchSize: opts.batchSize });
  const bar = await progressBar(process.stderr.isTTY);
  const started = performance.now();
  const result = await evaluate(model, loader, (done, total) => bar.update(`eval\t`, done, total));
  bar.stop();
  const seconds = (performance.now() - started) / 1000;
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ arch, weights: opts.weights, data: opts.data, ...result, seconds })}\n`);
  } else {
    process.stdout.write(`${arch} on ${opts.data}: accuracy ${(result.accuracy * 100).toFixed(2)}%, loss ${result.loss.toFixed(4)} over ${result.images} images (${seconds.toFixed(1)} s)\n`);
  }
}

/** Adds `train` and `eval` to the `resnet` program. */
export function registerTrainCommands(
  program: Command,
  context: ModelCommandContext & { selectBackend(name: string, threads?: number): void; addBackendOption(command: Command): Command },
): void {
  const trainCommandDef = program
    .command('train')
    .description('train a ResNet on an image folder or Fashion-MNIST (from scratch, or fine-tuning --weights), with validation every epoch')
    .requiredOption('--arch <arch>', 'architecture (resnet20 … resnet110 for small images, resnet18 … for 224×224)')
    .requiredOption('--data <folder|fashion-mnist>', "a folder of class folders (with train/ and val/, or split by --seed), or 'fashion-mnist' (Debian's dataset-fashion-mnist)")
    .requiredOption('--out <dir>', 'where the run writes best/last weights (.safetensors, .pth), resume.safetensors, log.json and training.svg')
    .option('--weights <name|file|url>', 'fine-tune from these weights (a new fc for the data\'s classes)')
    .option('--freeze-backbone', 'train only fc (needs --weights); BatchNorm statistics stay as loaded')
    .option('--epochs <n>', 'epochs', parsePositiveInt('--epochs'), 15)
    .option('--batch-size <n>', 'images per step', parsePositiveInt('--batch-size'), 128)
    .option('--lr <lr>', 'peak learning rate (default: 0.1 SGD from scratch, 0.01 fine-tuning, 1e-3 AdamW)', parsePositiveNumber('--lr'))
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['sgd', 'adamw']).default('sgd'))
    .option('--momentum <m>', 'SGD momentum', parseFraction('--momentum'), 0.9)
    .option('--no-nesterov', 'plain momentum instead of Nesterov\'s')
    .option('--weight-decay <wd>', 'weight decay of weights (norm layers and biases get none; default 5e-4 from scratch, 1e-4 fine-tuning, 0.05 AdamW)', parseNonNegativeNumber('--weight-decay'))
    .option('--label-smoothing <eps>', 'label smoothing of the loss', parseFraction('--label-smoothing'), 0)
    .option('--warmup-epochs <n>', 'linear warm-up before cosine annealing (capped at a tenth of the run)', parseNonNegativeNumber('--warmup-epochs'), 1)
    .option('--seed <n>', 'seed of the initialisation, data order, augmentation and split', parseInteger('--seed'), 0)
    .option('--resume', 'continue the run in --out from its last finished epoch (its saved options apply)')
    .option('--image-size <n>', 'crop size for folder data', parsePositiveInt('--image-size'))
    .option('--grayscale', 'folder images as one grey channel (for a model of grey images)')
    .option('--limit <n>', 'use only the first n images of each split', parsePositiveInt('--limit'))
    .option('--threads <n>', 'threads for the compute backend', parsePositiveInt('--threads'))
    .option('--json', 'one JSON line per epoch on stdout');
  context
    .addBackendOption(trainCommandDef)
    .addHelpText('after', context.exitHelp)
    .action((opts: TrainFlags) => trainCommand(opts, context));

  const evalCommandDef = program
    .command('eval')
    .description('accuracy and loss of weights on a data set\'s validation split (Fashion-MNIST\'s test set)')
    .requiredOption('--weights <file|url|name>', 'weights (a resnet train output says its architecture)')
    .requiredOption('--data <folder|fashion-mnist>', "a folder of class folders (its val/ if it has one), or 'fashion-mnist'")
    .option('--arch <arch>', 'architecture (default: from the weights\' metadata)')
    .option('--batch-size <n>', 'images per forward pass', parsePositiveInt('--batch-size'), 256)
    .option('--num-classes <n>', 'class count (default: from fc.weight)', parsePositiveInt('--num-classes'))
    .option('--image-size <n>', 'crop size for folder data', parsePositiveInt('--image-size'))
    .option('--grayscale', 'folder images as one grey channel (default: as the weights\' metadata says)')
    .option('--limit <n>', 'use only the first n images', parsePositiveInt('--limit'))
    .option('--threads <n>', 'threads for the compute backend', parsePositiveInt('--threads'))
    .option('--json', 'print {accuracy, loss, images, …} as one JSON line');
  context
    .addBackendOption(evalCommandDef)
    .addHelpText('after', context.exitHelp)
    .action((opts: EvalFlags) => evalCommand(opts, context));
}
