// A fuzz child process: runs inputs through the readers one at a time and reports each outcome to
// the parent (fuzz/campaign.ts), which watches its time and memory and kills it if either runs
// away. Started with fork(); takes one batch message, answers one message per input, then exits.

import { readFileSync } from 'node:fs';
import { WeightFileError } from '../src/io/errors.js';
import { readNpy } from '../src/io/npy.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { loadStateDictFromTorch } from '../src/io/torch.js';
import { ImageFileError, decodeImage } from '../src/preprocess/decode.js';
import { loadCorpus, makeMutant, type ReaderName } from './mutants.js';

/** The typed error each reader promises for bad input; anything else it throws is a finding. */
const READERS: Readonly<Record<ReaderName, { run: (bytes: Uint8Array) => unknown; typed: new (...args: never[]) => Error }>> = {
  torch: { run: (bytes) => loadStateDictFromTorch(bytes, { copy: false }), typed: WeightFileError },
  safetensors: { run: (bytes) => readSafetensors(bytes), typed: WeightFileError },
  npy: { run: (bytes) => readNpy(bytes), typed: WeightFileError },
  image: { run: (bytes) => decodeImage(bytes), typed: ImageFileError },
};

/** What the parent sends: a range of a seeded campaign, or files to replay. */
export type WorkerBatch =
  | { kind: 'mutants'; seed: number; from: number; to: number }
  | { kind: 'files'; files: { path: string; reader: ReaderName }[] };

export type Outcome = 'ok' | 'typed' | 'untyped';

/** One answer per input, in order; `position` counts inputs within the batch. */
export interface WorkerResult {
  position: number;
  reader: ReaderName;
  outcome: Outcome;
  /** The error's first line, for errors. */
  message?: string;
  ms: number;
  /** Growth of the process's peak resident memory while this input ran, MiB. */
  peakGrowthMiB: number;
}

function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024; // KiB on Linux and macOS
}

async function runOne(reader: ReaderName, bytes: Uint8Array, position: number): Promise<WorkerResult> {
  const before = peakRssMiB();
  const start = performance.now();
  let outcome: Outcome = 'ok';
  let message: string | undefined;
  try {
    await READERS[reader].run(bytes);
  } catch (error) {
    outcome = error instanceof READERS[reader].typed ? 'typed' : 'untyped';
    message = error instanceof Error ? `${error.name}: ${error.message.split('\n')[0]}` : String(error);
  }
  const ms = performance.now() - start;
  return { position, reader, outcome, message, ms, peakGrowthMiB: peakRssMiB() - before };
}

async function runBatch(batch: WorkerBatch): Promise<void> {
  const send = (result: WorkerResult): Promise<void> =>
    new Promise((resolve, reject) => process.send!(result, (error: Error | null) => (error ? reject(error) : resolve())));
  if (batch.kind === 'mutants') {
    const corpus = loadCorpus();
    for (let index = batch.from; index < batch.to; index++) {
      const mutant = makeMutant(corpus, batch.seed, index);
      await send(await runOne(mutant.reader, mutant.bytes, index - batch.from));
    }
  } else {
    for (const [position, { path, reader }] of batch.files.entries()) {
      await send(await runOne(reader, new Uint8Array(readFileSync(path)), position));
    }
  }
}

process.once('message', (batch: WorkerBatch) => {
  // libvips keeps decoded images in a cache and runs a thread per core: neither helps here.
  import('sharp').then((sharp) => {
    sharp.default.cache(false);
    sharp.default.concurrency(1);
  }).catch(() => undefined)
    .then(() => runBatch(batch))
    .then(() => process.disconnect(), (error: unknown) => {
      console.error(error);
      process.exit(70);
    });
});
