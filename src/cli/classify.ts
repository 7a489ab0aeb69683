// `resnet classify <images...>`: torchvision's preprocessing, one batched eval forward, and the
// top-k ImageNet categories with their softmax probabilities for each image.

import { InvalidArgumentError, type Command } from 'commander';
import { parsePositiveInt } from './args.js';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Tensor } from '../core/tensor.js';
import { Generator } from '../core/rng.js';
import type { AnyResNet } from '../models/builders.js';
import { CenterCrop, Compose, Grayscale, Normalize, Resize, ToTensor, type Transform } from '../data/index.js';
import type { ModelMetadata } from '../train/checkpoint.js';
import { trainedModelFrom } from '../train/trainer.js';
import { ImageClassification } from '../preprocess/transforms.js';
import { ImageFileError, readImage } from '../preprocess/decode.js';
import type { RgbImage } from '../preprocess/image.js';
import { IMAGENET_CATEGORIES } from '../weights/imagenet.generated.js';
import { resolveWeights } from '../weights/load.js';
import { ShapeError } from '../ops/functional.js';
import { noGrad } from '../ops/autograd.js';
import { buildModelWithWeights, type ModelCommandContext, type ModelFlags } from './model.js';

interface ClassifyFlags extends ModelFlags {
  arch: string;
  weights: string;
  topk: number;
  batch: number;
  resize?: number;
  crop?: number;
  json?: boolean;
}

export interface Prediction {
  index: number;
  category: string;
  probability: number;
}

/** Softmax over each row of logits (N, classes), then the k most probable classes per row. */
export function topK(logits: Tensor, k: number, categories: readonly string[]): Prediction[][] {
  const [batch, classes] = logits.shape;
  const data = logits.f32;
  const rows: Prediction[][] = [];
  for (let n = 0; n < batch; n++) {
    const row = data.subarray(n * classes, (n + 1) * classes);
    const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    const order = [...row.keys()].sort((a, b) => row[b] - row[a]).slice(0, k);
    rows.push(order.map((index) => ({ index, category: categories[index] ?? `class ${index}`, probability: Math.exp(row[index] - max) / sum })));
  }
  return rows;
}

/**
 * A model saved by `resnet train` (a .safetensors file with its metadata), with the
 * preprocessing it was trained with: resize, centre crop, grayscale for one-channel models,
 * normalisation. Null for any other weights.
 */
async function trainedModel(weights: string, context: ModelCommandContext): Promise<{ model: AnyResNet; meta: ModelMetadata; preprocess: (images: RgbImage[]) => Tensor } | null> {
  if (!weights.endsWith('.safetensors') || !existsSync(weights)) return null;
  let bytes: Uint8Array;
  try {
    bytes = await readFile(weights);
  } catch (e) {
    throw context.error(`cannot read ${weights}: ${(e as Error).message}`, context.exit.file);
  }
  const trained = trainedModelFrom(bytes);
  if (!trained) return null;
  const { model, meta } = trained;
  const p = meta.preprocess;
  const steps: Transform<never, unknown>[] = [new Resize(p.resize), new CenterCrop(p.crop)];
  if (meta.inChannels === 1) steps.push(new Grayscale(1));
  steps.push(new ToTensor(), new Normalize(p.mean, p.std));
  const transform = new Compose<RgbImage, Tensor>(steps);
  const generator = new Generator(0); // the eval transforms draw no random numbers
  const preprocess = (images: RgbImage[]): Tensor => {
    const tensors = images.map((image) => transform.apply(image, generator));
    const [c, h, w] = tensors[0].shape;
    const batch = new Float32Array(tensors.length * c * h * w);
    tensors.forEach((t, i) => batch.set(t.f32, i * c * h * w));
    return new Tensor(batch, [tensors.length, c, h, w]);
  };
  return { model, meta, preprocess };
}

async function classifyCommand(images: string[], opts: ClassifyFlags, context: ModelCommandContext): Promise<void> {
  const trained = await trainedModel(opts.weights, context);
  if (trained) return classifyWith(images, opts, trained.meta.arch, trained.model, trained.preprocess, trained.meta.classes, context);
  const arch = context.parseArch(opts.arch);
  let source;
  try {
    source = resolveWeights(arch, opts.weights);
  } catch (e) {
    throw context.error((e as Error).message, context.exit.usage);
  }
  const descriptor = typeof source === 'string' ? undefined : source;
  const model = await buildModelWithWeights(arch, opts, context);
  const transforms = descriptor?.transforms;
  const preprocess = new ImageClassification({
    resizeSize: opts.resize ?? transforms?.resizeSize ?? 256,
    cropSize: opts.crop ?? transforms?.cropSize ?? 224,
    mean: transforms?.mean,
    std: transforms?.std,
  });
  const categories = descriptor?.meta.categories ?? (model.fc.outFeatures === IMAGENET_CATEGORIES.length ? IMAGENET_CATEGORIES : []);
  return classifyWith(images, opts, arch, model, (decoded) => preprocess.forward(decoded), categories, context);
}

async function classifyWith(
  images: string[], opts: ClassifyFlags, arch: string, model: AnyResNet, preprocess: (images: RgbImage[]) => Tensor,
  categories: readonly string[], context: ModelCommandContext,
): Promise<void> {
  const results: { image: string; predictions: Prediction[] }[] = [];
  for (let start = 0; start < images.length; start += opts.batch) {
    const paths = images.slice(start, start + opts.batch);
    const decoded: RgbImage[] = [];
    for (const path of paths) {
      try {
        decoded.push(await readImage(path));
      } catch (e) {
        if (e instanceof ImageFileError) throw context.error(e.message, context.exit.file);
        throw e;
      }
    }
    let logits: Tensor;
    try {
      logits = noGrad(() => model.call(preprocess(decoded)));
    } catch (e) {
      if (e instanceof ShapeError) throw context.error(e.message, context.exit.input);
      throw e;
    }
    topK(logits, opts.topk, categories).forEach((predictions, i) => results.push({ image: paths[i], predictions }));
  }
  for (const r of results) {
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ arch, ...r })}\n`);
    } else {
      process.stdout.write(`${r.image}\n`);
      for (const p of r.predictions) process.stdout.write(`  ${(p.probability * 100).toFixed(2).padStart(6)}%  ${p.category} (${p.index})\n`);
    }
  }
}

/** Adds `classify` to the `resnet` program. */
export function registerClassifyCommand(program: Command, context: ModelCommandContext): Command {
  const command = program
    .command('classify')
    .description('top-k ImageNet categories with probabilities for each image (JPEG, PNG, WebP), batched')
    .argument('<images...>', 'image files')
    .option('--arch <arch>', 'architecture (weights written by resnet train say their own)', 'resnet50')
    .option('--weights <file|url|name>', 'torchvision weights name (IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT), .pth/.safetensors file or URL', 'DEFAULT')
    .option('--topk <k>', 'categories per image', parsePositiveInt('--topk'), 5)
    .option('--batch <n>', 'images per forward pass', parsePositiveInt('--batch'), 8)
    .option('--resize <n>', 'resize the shorter side (default: the weights\' preset, else 256)', parsePositiveInt('--resize'))
    .option('--crop <n>', 'center crop (default: the weights\' preset, else 224)', parsePositiveInt('--crop'))
    .option('--json', 'one JSON line per image');
  return context
    .addModelOptions(command)
    .addHelpText('after', context.exitHelp)
    .action((images: string[], opts: ClassifyFlags) => classifyCommand(images, opts, context));
}
