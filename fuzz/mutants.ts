// Seeded mutants of the committed format fixtures, the inputs of the reader fuzz (fuzz/run.ts).
// Input `index` of a campaign with seed `seed` is a pure function of (seed, index, corpus), so a
// finding is rebuilt from its two numbers: `npm run fuzz -- --seed S --index I`.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Generator } from '../src/core/rng.js';

/** Which reader an input is fed to (fuzz/worker.ts maps each to its function and error type). */
export type ReaderName = 'torch' | 'safetensors' | 'npy' | 'image';
export const READER_NAMES: readonly ReaderName[] = ['torch', 'safetensors', 'npy', 'image'];

export interface CorpusFile {
  /** Path from the repository root. */
  readonly name: string;
  readonly reader: ReaderName;
  readonly bytes: Uint8Array;
}

/** The repository root: this file compiles to <root>/dist/fuzz/mutants.js. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Folders of committed fixtures the mutants start from, and the reader for each extension. */
const CORPUS_DIRS = ['test/fixtures/formats', 'test/fixtures/preprocess/images'];
const READER_OF_EXTENSION: Readonly<Record<string, ReaderName>> = {
  pth: 'torch', safetensors: 'safetensors', npy: 'npy', png: 'image', jpg: 'image', webp: 'image',
};

export function readerOfFile(name: string): ReaderName | undefined {
  return READER_OF_EXTENSION[name.slice(name.lastIndexOf('.') + 1)];
}

/** Every fixture file in CORPUS_DIRS with a reader, sorted by path (the order seeds index into). */
export function loadCorpus(root = repoRoot): CorpusFile[] {
  const files: CorpusFile[] = [];
  for (const dir of CORPUS_DIRS) {
    for (const entry of readdirSync(join(root, dir)).sort()) {
      const reader = readerOfFile(entry);
      if (reader !== undefined) files.push({ name: `${dir}/${entry}`, reader, bytes: new Uint8Array(readFileSync(join(root, dir, entry))) });
    }
  }
  return files;
}

export interface Mutant {
  readonly index: number;
  readonly reader: ReaderName;
  /** The corpus file it started from. */
  readonly source: string;
  /** The mutations applied, in order, for the report ("int32le@1234=0x4000000b"). */
  readonly steps: string[];
  readonly bytes: Uint8Array;
}

/** Share of the inputs that starts from each kind of file (images decode slower than weights parse). */
const READER_SHARES: readonly [ReaderName, number][] = [['torch', 0.45], ['safetensors', 0.2], ['npy', 0.15], ['image', 0.2]];
/** This share of inputs goes to a reader other than its source file's, to test format detection. */
const CROSS_SHARE = 0.05;

/** Byte patterns worth aiming at: zip record signatures, image header chunks and markers. */
const MARKERS: Readonly<Record<ReaderName, readonly number[][]>> = {
  torch: [[0x50, 0x4b, 0x05, 0x06], [0x50, 0x4b, 0x06, 0x06], [0x50, 0x4b, 0x06, 0x07], [0x50, 0x4b, 0x01, 0x02],
    [0x50, 0x4b, 0x03, 0x04]],
  safetensors: [],
  npy: [],
  image: [[0x49, 0x48, 0x44, 0x52], [0xff, 0xc0], [0xff, 0xc2], [0xff, 0xc4], [0xff, 0xda], [0x56, 0x50, 0x38],
    [0x49, 0x44, 0x41, 0x54], [0x50, 0x4c, 0x54, 0x45]],
};

/** Pickle opcodes followed by an integer argument (BININT, BININT1, BININT2, LONG1, BINUNICODE, BINPUT, …). */
const PICKLE_INT_OPCODES = new Set([0x4a, 0x4b, 0x4d, 0x8a, 0x58, 0x71, 0x72, 0x68, 0x6a, 0x8c, 0x42, 0x43, 0x95]);

/** BININT1, BININT2, BININT and the width of their argument. */
const PICKLE_INT_WIDTH = new Map([[0x4b, 1], [0x4d, 2], [0x4a, 4]]);

const INTERESTING = [
  0n, 1n, 2n, 3n, 7n, 8n, 16n, 46n, 0x7fn, 0x80n, 0xffn, 0x100n, 0x7fffn, 0x8000n, 0xffffn, 0x10000n, 0xf4240n,
  0x7fffffffn, 0x80000000n, 0xffffffffn, 0x4000000bn, 0x100000000n, 1n << 40n, 1n << 53n, (1n << 62n) + 5n,
  (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n,
];
const INTERESTING_DECIMALS = ['0', '1', '-1', '2', '255', '65536', '1073741824', '4294967296', '268435456',
  '9007199254740993', '1e30', '99999999999999999999', '3.5', '-0'];

class Mutator {
  constructor(private readonly rng: Generator) {}

  random(): number {
    return this.rng.random();
  }

  int(n: number): number {
    return Math.floor(this.rng.random() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  chance(p: number): boolean {
    return this.rng.random() < p;
  }

  interesting(): bigint {
    if (this.chance(0.2)) return BigInt(this.rng.nextUint32()); // anything
    return this.pick(INTERESTING);
  }
}

/** Writes `value` as a `width`-byte integer at `at` (clipped at the end of `bytes`). */
function writeInt(bytes: Uint8Array, at: number, width: number, value: bigint, littleEndian: boolean): void {
  for (let k = 0; k < width && at + k < bytes.length; k++) {
    const byte = Number((value >> BigInt(8 * k)) & 0xffn);
    bytes[littleEndian ? at + k : at + width - 1 - k] = byte;
  }
}

function readInt(bytes: Uint8Array, at: number, width: number): bigint {
  let value = 0n;
  for (let k = width - 1; k >= 0; k--) value = (value << 8n) | BigInt(bytes[at + k] ?? 0);
  return value;
}

function findAll(bytes: Uint8Array, pattern: readonly number[]): number[] {
  const found: number[] = [];
  for (let i = bytes.indexOf(pattern[0]); i >= 0 && i <= bytes.length - pattern.length; i = bytes.indexOf(pattern[0], i + 1)) {
    if (pattern.every((b, k) => bytes[i + k] === b)) found.push(i);
  }
  return found;
}

/** Runs of ASCII digits (JSON and npy headers spell their counts and offsets in decimal). */
function digitRuns(bytes: Uint8Array, limit: number): [number, number][] {
  const runs: [number, number][] = [];
  for (let i = 0; i < Math.min(bytes.length, limit); i++) {
    if (bytes[i] >= 0x30 && bytes[i] <= 0x39) {
      let end = i;
      while (end < bytes.length && bytes[end] >= 0x30 && bytes[end] <= 0x39) end++;
      runs.push([i, end]);
      i = end;
    }
  }
  return runs;
}

function splice(bytes: Uint8Array, at: number, remove: number, insert: Uint8Array): Uint8Array {
  remove = Math.min(remove, bytes.length - at);
  const out = new Uint8Array(bytes.length - remove + insert.length);
  out.set(bytes.subarray(0, at), 0);
  out.set(insert, at);
  out.set(bytes.subarray(at + remove), at + insert.length);
  return out;
}

/** One mutation of `bytes` (a fresh array or `bytes` changed in place); appends its description to `steps`. */
function mutateOnce(m: Mutator, bytes: Uint8Array, reader: ReaderName, donors: readonly CorpusFile[], steps: string[]): Uint8Array {
  if (bytes.length === 0) return Uint8Array.of(m.int(256));
  const at = m.int(bytes.length);
  const hex = (v: bigint): string => `0x${v.toString(16)}`;
  switch (m.int(12)) {
    case 0: {
      const bit = m.int(8);
      bytes[at] ^= 1 << bit;
      steps.push(`flip@${at}.${bit}`);
      return bytes;
    }
    case 1: {
      bytes[at] = m.int(256);
      steps.push(`byte@${at}=${bytes[at]}`);
      return bytes;
    }
    case 2: case 3: { // an interesting integer anywhere, or just after a marker (a zip record's fields)
      const width = m.pick([1, 2, 4, 4, 8]);
      const littleEndian = m.chance(0.8);
      const value = m.interesting();
      let where = at;
      const markers = MARKERS[reader].flatMap((pattern) => findAll(bytes, pattern));
      if (markers.length > 0 && m.chance(0.7)) where = m.pick(markers) + m.int(48);
      else if (reader === 'torch' && m.chance(0.5)) {
        const opcodes = [...bytes.keys()].filter((i) => PICKLE_INT_OPCODES.has(bytes[i]));
        if (opcodes.length > 0) where = m.pick(opcodes) + 1;
      }
      where = Math.min(where, bytes.length - 1);
      writeInt(bytes, where, width, value, littleEndian);
      steps.push(`int${8 * width}${littleEndian ? 'le' : 'be'}@${where}=${hex(value)}`);
      return bytes;
    }
    case 4: { // small arithmetic on a field
      const width = m.pick([1, 2, 4]);
      const delta = BigInt(m.int(71) - 35);
      const value = readInt(bytes, at, width) + delta;
      writeInt(bytes, at, width, value, true);
      steps.push(`add${8 * width}@${at}${delta >= 0n ? '+' : ''}${delta}`);
      return bytes;
    }
    case 5: { // a decimal number in a text header (safetensors JSON, npy dict)
      const runs = digitRuns(bytes, reader === 'safetensors' || reader === 'npy' ? 4096 : 0);
      if (runs.length === 0) return mutateOnce(m, bytes, reader, donors, steps);
      const [begin, end] = m.pick(runs);
      const text = m.pick(INTERESTING_DECIMALS);
      steps.push(`decimal@${begin}=${text}`);
      return splice(bytes, begin, end - begin, Uint8Array.from(text, (c) => c.charCodeAt(0)));
    }
    case 6: { // insert random bytes
      const insert = Uint8Array.from({ length: 1 + m.int(16) }, () => m.int(256));
      steps.push(`insert@${at}+${insert.length}`);
      return splice(bytes, at, 0, insert);
    }
    case 7: { // delete a range
      const remove = Math.min(1 + m.int(64), bytes.length - at);
      steps.push(`delete@${at}-${remove}`);
      return splice(bytes, at, remove, new Uint8Array(0));
    }
    case 8: {
      steps.push(`truncate@${at}`);
      return bytes.slice(0, at);
    }
    case 9: { // repeat a chunk
      const length = Math.min(1 + m.int(256), bytes.length - at);
      const times = 1 + m.int(8);
      const chunk = bytes.slice(at, at + length);
      const insert = new Uint8Array(length * times);
      for (let k = 0; k < times; k++) insert.set(chunk, k * length);
      steps.push(`repeat@${at}:${length}x${times}`);
      return splice(bytes, at, 0, insert);
    }
    case 11: { // a pickled int (BININT1/BININT2/BININT: sizes, strides, offsets) respelled as any int
      const opcodes = reader === 'torch' ? [...bytes.keys()].filter((i) => PICKLE_INT_WIDTH.has(bytes[i])) : [];
      if (opcodes.length === 0) return mutateOnce(m, bytes, reader, donors, steps);
      const where = m.pick(opcodes);
      const value = m.chance(0.5) ? m.interesting() : -m.interesting();
      const fits = value >= -(2n ** 31n) && value < 2n ** 31n;
      const spelled = new Uint8Array(fits ? 5 : 10);
      if (fits) {
        spelled[0] = 0x4a; // BININT
        writeInt(spelled, 1, 4, BigInt.asUintN(32, value), true);
      } else {
        spelled.set([0x8a, 8]); // LONG1, 8 bytes
        writeInt(spelled, 2, 8, BigInt.asUintN(64, value), true);
      }
      steps.push(`pickle-int@${where}=${value}`);
      return splice(bytes, where, 1 + PICKLE_INT_WIDTH.get(bytes[where])!, spelled);
    }
    default: { // a range from another file of the same kind
      const donor = m.pick(donors).bytes;
      const from = m.int(donor.length);
      const length = Math.min(1 + m.int(512), donor.length - from);
      const remove = Math.min(m.int(512), bytes.length - at);
      steps.push(`splice@${at}-${remove}+${length}`);
      return splice(bytes, at, remove, donor.subarray(from, from + length));
    }
  }
}

/** splitmix-style mix of (seed, index) into one 32-bit generator seed. */
function mix(seed: number, index: number): number {
  let z = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index >>> 0, 0x85ebca6b) ^ Math.floor(index / 2 ** 32)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d);
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Input `index` of the campaign `seed`: a corpus file, 1 to 8 mutations (mostly 1–2), and the reader it goes to. */
export function makeMutant(corpus: readonly CorpusFile[], seed: number, index: number): Mutant {
  const m = new Mutator(new Generator(mix(seed, index)));
  let draw = m.random();
  const [kind] = READER_SHARES.find(([, share]) => (draw -= share) < 0) ?? READER_SHARES[0];
  const donors = corpus.filter((f) => f.reader === kind);
  const source = m.pick(donors);
  let bytes: Uint8Array = source.bytes.slice();
  const steps: string[] = [];
  const count = 1 + Math.min(7, Math.floor(-Math.log2(1 - m.random())));
  for (let k = 0; k < count; k++) bytes = mutateOnce(m, bytes, source.reader, donors, steps);
  const reader = m.chance(CROSS_SHARE) ? m.pick(READER_NAMES.filter((r) => r !== 'image')) : source.reader;
  return { index, reader, source: source.name, steps, bytes };
}
