// The weight-file readers against files torch and numpy wrote (made by
// test/fixtures/formats/make_formats.py with torch 1.13 / numpy 1.24): values must match
// exactly — every conversion (float16/bfloat16/float64 → float32, ints → int64) is exact
// or round-to-nearest like torch's .float() — and bad files must fail with WeightFileError.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import { Tensor } from '../src/core/tensor.js';
import { WeightFileError } from '../src/io/errors.js';
import { readNpy, writeNpy } from '../src/io/npy.js';
import { getPickleState, unpickle } from '../src/io/pickle.js';
import { readSafetensors, readSafetensorsMetadata, writeSafetensors } from '../src/io/safetensors.js';
import { STATE_DICT_GLOBALS, loadStateDictFromTorch, loadTorchFile } from '../src/io/torch.js';
import { readZipDirectory } from '../src/io/zip.js';
import { detectWeightFormat, loadWeightsFile, readWeights } from '../src/io/weights.js';
import { fixturePath } from './helpers/paths.js';

const formatsPath = (name: string): string => fixturePath('formats', name);
/** Fixture bytes as node gives them: a Buffer, which may sit at an offset in a shared pool. */
const fixture = (name: string): Uint8Array => readFileSync(formatsPath(name));

interface ExpectedTensor {
  dtype: 'float32' | 'int64';
  shape: number[];
  values: (number | string)[];
}

function expectedTensors(name: string): Map<string, Tensor> {
  const json = JSON.parse(readFileSync(formatsPath(name), 'utf8')) as Record<string, ExpectedTensor>;
  const float = (v: number | string): number =>
    (typeof v === 'number' ? v : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : NaN);
  return new Map(Object.entries(json).map(([key, { dtype, shape, values }]) => [key, new Tensor(
    dtype === 'int64' ? BigInt64Array.from(values, (v) => BigInt(v)) : Float32Array.from(values, float), shape)]));
}

/** Exact equality, -0 and 0 told apart; reports the first differing element. */
function assertTensorEqual(actual: unknown, expected: Tensor, what: string): void {
  assert.ok(actual instanceof Tensor, `${what}: not a Tensor`);
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype`);
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  for (let i = 0; i < expected.size; i++) {
    if (!Object.is(actual.data[i], expected.data[i])) {
      assert.fail(`${what}: element ${i} is ${actual.data[i]}, expected ${expected.data[i]}`);
    }
  }
}

function assertStateDictEqual(actual: Map<string, unknown>, expected: Map<string, Tensor>, what: string): void {
  assert.deepEqual([...actual.keys()], [...expected.keys()], `${what}: keys in order`);
  for (const [key, tensor] of expected) assertTensorEqual(actual.get(key), tensor, `${what} '${key}'`);
}

function assertWeightFileError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof WeightFileError, `expected WeightFileError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  });
}

/** Offsets of the central-directory headers in a zip archive. */
const directoryEntries = (zip: Uint8Array): number[] =>
  [...zip.keys()].filter((i) => zip[i] === 0x50 && zip[i + 1] === 0x4b && zip[i + 2] === 0x01 && zip[i + 3] === 0x02);

/** A torch-style zip (root folder 'archive') around a hand-written data.pkl. */
function torchZip(dataPkl: Uint8Array, storages: Record<string, Uint8Array> = {}): Uint8Array {
  const files: Record<string, Uint8Array> = { 'archive/data.pkl': dataPkl, 'archive/version': Uint8Array.of(0x33, 0x0a) };
  for (const [key, bytes] of Object.entries(storages)) files[`archive/data/${key}`] = bytes;
  return zipSync(files, { level: 0 });
}

const hex = (text: string): Uint8Array => Uint8Array.from(text.match(/../g) ?? [], (byte) => parseInt(byte, 16));
const ascii = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));

/** Deterministic PRNG (mulberry32) for the corruption fuzz. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('torch.save files', () => {
  const expected = expectedTensors('dtypes_expected.json');

  for (const file of ['dtypes_zip.pth', 'dtypes_legacy.pth']) {
    test(`${file}: every dtype and view equals numpy's values`, () => {
      const loaded = loadTorchFile(fixture(file));
      assert.ok(loaded instanceof Map);
      assertStateDictEqual(loaded, expected, file);
    });
  }

  test('zip and legacy formats give identical tensors', () => {
    const zip = loadStateDictFromTorch(fixture('dtypes_zip.pth'));
    const legacy = loadStateDictFromTorch(fixture('dtypes_legacy.pth'));
    for (const [key, tensor] of zip) assertTensorEqual(legacy.get(key), tensor, key);
  });

  test('views come out contiguous with the right values', () => {
    const t = loadStateDictFromTorch(fixture('dtypes_zip.pth'));
    // (3,4)·1.5 transposed: row i of the result is column i of the original.
    assert.deepEqual(t.get('transposed')!.shape, [4, 3]);
    assert.deepEqual([...t.get('transposed')!.f32.subarray(0, 3)], [0, 6, 12]);
    assert.deepEqual([...t.get('offset_view')!.f32], [-0.25, 0, 0.25, 0.5]); // arange(10)·0.25-1, [3:7]
    assert.deepEqual([...t.get('strided_view')!.f32], [-0.75, 0, 0.75]); // [1::3]
    assert.deepEqual([...t.get('shared_b')!.f32], [0.5, 4.5]); // rows 1.., column 2 of arange(12)-5.5
    assert.deepEqual(t.get('scalar_f32')!.shape, []);
    assert.equal(t.get('scalar_f32')!.item(), 3.5);
    assert.deepEqual([...(t.get('i64')!.data as BigInt64Array)], [0n, -1n, 2n ** 62n, -(2n ** 63n), 2n ** 63n - 1n, 7n]);
    assert.deepEqual(t.get('scalar_i64')!.data, BigInt64Array.of(42n));
    assert.deepEqual(t.get('empty')!.shape, [0, 3]);
    assert.equal(t.get('bool')!.dtype, 'int64');
  });

  const model = expectedTensors('model_expected.json');
  for (const file of ['model_zip.pth', 'model_legacy.pth']) {
    test(`${file}: nn state dict with num_batches_tracked`, () => {
      const stateDict = loadStateDictFromTorch(fixture(file));
      assertStateDictEqual(stateDict, model, file);
      assert.deepEqual(stateDict.get('1.num_batches_tracked')!.data, BigInt64Array.of(1n));
      assert.equal(stateDict.get('1.num_batches_tracked')!.ndim, 0);
    });
  }

  test("the OrderedDict's _metadata is kept as BUILD state", () => {
    const loaded = loadTorchFile(fixture('model_zip.pth')) as Map<string, Tensor>;
    const state = getPickleState(loaded);
    assert.ok(state instanceof Map && state.get('_metadata') instanceof Map);
  });

  test("a checkpoint dict is unwrapped through its 'model' entry", () => {
    const checkpoint = loadTorchFile(fixture('checkpoint_zip.pth')) as Map<string, unknown>;
    assert.equal(checkpoint.get('epoch'), 3);
    assert.equal(checkpoint.get('optimizer'), 'sgd');
    assertStateDictEqual(loadStateDictFromTorch(fixture('checkpoint_zip.pth')), model, 'checkpoint');
  });

  test("a torchvision reference-script checkpoint (optimizer, lr_scheduler, argparse args) loads its 'model'", () => {
    const file = 'reference_checkpoint_zip.pth';
    assertStateDictEqual(loadStateDictFromTorch(fixture(file)), expectedTensors('reference_checkpoint_expected.json'), file);
    const checkpoint = loadTorchFile(fixture(file)) as Map<string, unknown>;
    // The command line is an inert dict: its attributes are BUILD state, never applied.
    const args = checkpoint.get('args');
    assert.ok(args instanceof Map && args.size === 0);
    const state = getPickleState(args) as Map<string, unknown>;
    assert.equal(state.get('model'), 'resnet18');
    assert.equal(state.get('epochs'), 90);
    const optimizer = checkpoint.get('optimizer') as Map<string, unknown>;
    const buffers = optimizer.get('state') as Map<number, Map<string, unknown>>;
    assert.ok(buffers.get(0)?.get('momentum_buffer') instanceof Tensor, 'SGD momentum buffers are tensors too');
  });

  for (const file of ['protocol4_zip.pth', 'protocol4_legacy.pth', 'protocol5_zip.pth', 'protocol5_legacy.pth']) {
    test(`${file}: torch.save with pickle_protocol ${file[8]} (framed pickles)`, () => {
      assert.equal(detectWeightFormat(fixture(file)), file.includes('legacy') ? 'torch-legacy' : 'torch-zip');
      assertStateDictEqual(loadStateDictFromTorch(fixture(file)), expectedTensors('protocols_expected.json'), file);
    });
  }

  test('hostile globals are refused by name, nothing runs', () => {
    assertWeightFileError(() => loadTorchFile(fixture('hostile_os_system.pth')),
      /refusing to load global 'os\.system' \(not in the state-dict allowlist\)/);
    assertWeightFileError(() => loadTorchFile(fixture('hostile_legacy_eval.pth')), /'builtins\.eval'/);
  });

  test('a TorchScript archive (torch.jit.save) is refused with what to save instead', () => {
    assertWeightFileError(() => loadTorchFile(fixture('torchscript.pt')),
      /refusing to load global '__torch__\.torchvision\.models\.resnet\.BasicBlock' \(not in the state-dict allowlist\): the file is a TorchScript archive \(torch\.jit\.save\), which holds the model's code, not a state dict/);
  });

  test('a whole pickled model (torch.save(model)) is refused with what to save instead', () => {
    assertWeightFileError(() => loadTorchFile(fixture('whole_model_zip.pth')),
      /refusing to load global 'torchvision\.models\.resnet\.BasicBlock' \(not in the state-dict allowlist\): the file holds a whole pickled model \(torch\.save\(model\)\), not a state dict; in Python, torch\.save\(model\.state_dict\(\), path\) writes one that loads/);
  });

  test('truncated files are rejected', () => {
    assertWeightFileError(() => loadTorchFile(fixture('truncated_zip.pth')), /zip/);
    assertWeightFileError(() => loadTorchFile(fixture('truncated_legacy.pth')), /truncated/);
  });

  test('every prefix of a legacy and a zip file fails cleanly', () => {
    for (const file of ['model_legacy.pth', 'model_zip.pth']) {
      const bytes = fixture(file);
      for (let n = 0; n < bytes.length; n++) {
        assert.throws(() => loadTorchFile(bytes.subarray(0, n)), WeightFileError, `${file} cut at ${n}`);
      }
    }
  });

  test('random byte corruption either loads or throws WeightFileError', () => {
    const next = random(1234);
    for (const file of ['model_legacy.pth', 'dtypes_legacy.pth']) {
      const original = new Uint8Array(fixture(file));
      for (let trial = 0; trial < 1500; trial++) {
        const bytes = original.slice();
        for (let k = 0; k < 3; k++) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
        try {
          loadTorchFile(bytes);
        } catch (error) {
          if (!(error instanceof WeightFileError)) assert.fail(`${file} trial ${trial}: ${String(error)}`);
        }
      }
    }
  });

  test('a flipped bit in a stored or deflated record is caught by its CRC-32, naming the record', () => {
    const original = new Uint8Array(fixture('model_zip.pth')); // a copy: Buffer's slice() would be a view
    const records = readZipDirectory(original);
    const storage = [...records.values()].filter((r) => /\/data\/\d+$/.test(r.name)).sort((a, b) => b.size - a.size)[0];
    const flipped = original.slice();
    flipped[storage.dataStart + (storage.size >> 1)] ^= 0x10;
    assertWeightFileError(() => loadTorchFile(flipped),
      new RegExp(`zip: record '${storage.name}' is corrupt: its ${storage.size} bytes have CRC-32 [0-9a-f]{8}, the archive's directory says ${storage.crc32.toString(16).padStart(8, '0')}`));
    // A wrong sum in the directory is the same error (the bytes and the sum disagree).
    const directory = directoryEntries(original).find((at) =>
      new TextDecoder().decode(original.subarray(at + 46, at + 46 + (original[at + 28] | (original[at + 29] << 8)))) === storage.name)!;
    const wrongSum = original.slice();
    wrongSum[directory + 16] ^= 0x01;
    assertWeightFileError(() => loadTorchFile(wrongSum), /is corrupt: .* CRC-32/);
    // Deflated records are checked after inflating.
    const deflated = zipSync({ 'archive/data.pkl': unzipSync(original)[`${storage.name.split('/')[0]}/data.pkl`] }, { level: 6 });
    const pklRecord = readZipDirectory(deflated).get('archive/data.pkl')!;
    assert.equal(pklRecord.method, 8);
    const badDeflated = deflated.slice();
    const entry = directoryEntries(badDeflated)[0];
    badDeflated[entry + 16] ^= 0x80;
    assertWeightFileError(() => loadTorchFile(badDeflated), /zip: record 'archive\/data\.pkl' is corrupt/);
    // The untouched file still loads.
    assert.ok(loadTorchFile(original) instanceof Map);
  });

  test('storage offsets and strides outside the storage are rejected', () => {
    assertWeightFileError(() => loadTorchFile(fixture('oob_offset.pth')), /tensor 'w'.*reads element 4 of a 4-element storage/);
    assertWeightFileError(() => loadTorchFile(fixture('oob_stride.pth')), /tensor 'w'.*reads element 4 of a 4-element storage/);
  });

  test('a missing storage record is reported', () => {
    const pkl = unzipSync(fixture('oob_offset.pth'))['archive/data.pkl'];
    assertWeightFileError(() => loadTorchFile(torchZip(pkl)), /storage '0' is missing/);
  });

  test('big-endian storages and any archive root name', () => {
    // {'w': float32 (3,) on storage '0', 'n': int64 () on storage '1'}, pickled by CPython's
    // Pickler the way torch.save reduces tensors (see make_formats.py's _BadView).
    const pkl = hex('800263636f6c6c656374696f6e730a4f726465726564446963740a71002952710128580100000077710263746f7263682e5f7574696c730a5f72656275696c645f74656e736f725f76320a71032828580700000073746f72616765710463746f7263680a466c6f617453746f726167650a71055801000000307106580300000063707571074b03747108514b004b038571094b0185710a8968002952710b74710c52710d58010000006e710e68032828680463746f7263680a4c6f6e6753746f726167650a710f580100000031711068074b01747111514b00292989680029527112747113527114752e');
    const floats = new Uint8Array(12);
    [1.5, -2, 0.25].forEach((v, i) => new DataView(floats.buffer).setFloat32(4 * i, v, false));
    const long = new Uint8Array(8);
    new DataView(long.buffer).setBigInt64(0, -3n, false);
    const zip = zipSync({
      'my model/data.pkl': pkl, 'my model/byteorder': ascii('big'),
      'my model/data/0': floats, 'my model/data/1': long,
    });
    const stateDict = loadStateDictFromTorch(zip);
    assertTensorEqual(stateDict.get('w'), Tensor.from([1.5, -2, 0.25]), 'w');
    assertTensorEqual(stateDict.get('n'), Tensor.int64Scalar(-3n), 'n');
  });

  test('cyclic containers terminate', () => {
    // l = []; l.append(l)
    const value = loadTorchFile(torchZip(hex('80025d7100680061' + '2e'))) as unknown[];
    assert.equal(value[0], value);
  });

  test('non-torch input is refused', () => {
    assertWeightFileError(() => loadTorchFile(ascii('hello world')), /not a torch file/);
    assertWeightFileError(() => loadStateDictFromTorch(torchZip(hex('80024b032e'))), /not a state dict/);
    assertWeightFileError(() => loadTorchFile(zipSync({ 'x.txt': ascii('x') })), /no <root>\/data\.pkl/);
  });
});

describe('readers bound their work by their input', () => {
  /** Runs `fn`, which must throw a WeightFileError matching `pattern`, within `ms` milliseconds. */
  function refusedQuickly(fn: () => unknown, pattern: RegExp, ms = 1000): void {
    const start = performance.now();
    assertWeightFileError(fn, pattern);
    const elapsed = performance.now() - start;
    assert.ok(elapsed < ms, `refused after ${elapsed.toFixed(0)} ms`);
  }

  test('views with zero or overlapping strides load as torch sees them, copied out (views_zip.pth)', () => {
    const loaded = loadStateDictFromTorch(fixture('views_zip.pth'));
    assertStateDictEqual(loaded, expectedTensors('views_expected.json'), 'views_zip.pth');
    assert.equal(loaded.get('tied'), loaded.get('window'), 'one view stored once loads as one tensor');
    // Every copy is charged: with no allowance the first view that needs one is refused by name.
    assertWeightFileError(() => loadStateDictFromTorch(fixture('views_zip.pth'), { expansionLimit: 0 }),
      /tensor 'rows': copying its view \(size \[4, 3\], stride \[0, 1\]\) of a 3-element storage needs 48 bytes, beyond the 0 bytes a 1325-byte file may expand into \(ReadOptions\.expansionLimit/);
    assert.equal(loadStateDictFromTorch(fixture('views_zip.pth'), { expansionLimit: 48 + 16 + 48 }).size, 4);
  });

  test('a 2^28-element view of one stored element is refused at once, not copied out to 1 GiB', () => {
    for (const file of ['expand_2e28_zip.pth', 'expand_2e28_legacy.pth']) {
      refusedQuickly(() => loadStateDictFromTorch(fixture(file)),
        /tensor 'w': copying its view \(size \[268435456\], stride \[0\]\) of a 1-element storage needs 1\.0 GiB, beyond the 64 MiB a \d+-byte file may expand into/);
    }
  });

  test('an end record claiming more entries than the central directory holds is refused before any loop', () => {
    refusedQuickly(() => loadTorchFile(fixture('zip64_count_1e6.pth')),
      /zip: the end record claims 1000000 entries, but a 685-byte central directory holds at most 14/, 100);
    refusedQuickly(() => loadTorchFile(fixture('zip64_count_4000000b.pth')), /claims 1073741835 entries/, 100);
    refusedQuickly(() => loadTorchFile(fixture('zip_count_ffff.pth')), /claims 65535 entries, but a 62-byte central directory holds at most 1$/, 100);
  });

  const pkl = unzipSync(fixture('oob_offset.pth'))['archive/data.pkl'];

  test('zip records that overlap or share a name are refused', () => {
    // Two directory entries pointing at one stored record would let one record be read twice.
    const zip = torchZip(pkl, { 0: new Uint8Array(16), 1: new Uint8Array(16) });
    const view = new DataView(zip.buffer, zip.byteOffset);
    const entry = (name: string): number => directoryEntries(zip).find((at) =>
      new TextDecoder().decode(zip.subarray(at + 46, at + 46 + view.getUint16(at + 28, true))) === name)!;
    const [first, second] = [entry('archive/data/0'), entry('archive/data/1')];
    const overlapping = zip.slice();
    new DataView(overlapping.buffer).setUint32(second + 42, view.getUint32(first + 42, true), true);
    assertWeightFileError(() => loadTorchFile(overlapping), /zip: records 'archive\/data\/[01]' and 'archive\/data\/[01]' overlap/);
    const renamed = zip.slice();
    renamed.set(ascii('archive/data/0'), second + 46);
    assertWeightFileError(() => loadTorchFile(renamed), /zip: two records are named 'archive\/data\/0'/);
  });

  test('deflated records inflate within the expansion limit and stop at their declared size', () => {
    const storage = new Uint8Array(8 << 20); // 2^21 float32 zeros, a few KiB deflated
    // {'w': 2^21 float32 on storage '0'}, pickled as torch.save does (see make_formats.py's _BadView).
    const pickle = hex('800263636f6c6c656374696f6e730a4f726465726564446963740a710029527101580100000077710263746f7263' +
      '682e5f7574696c730a5f72656275696c645f74656e736f725f76320a71032828580700000073746f72616765710463746f7263680a46' +
      '6c6f617453746f726167650a71055801000000307106580300000063707571074a00002000747108514b004a000020008571094b0185' +
      '710a8968002952710b74710c52710d732e');
    const zip = zipSync({ 'archive/data.pkl': pickle, 'archive/data/0': storage }, { level: 9 });
    assert.ok(zip.length < 64 << 10, `${zip.length} bytes`);
    refusedQuickly(() => loadTorchFile(zip, { expansionLimit: 1 << 20 }), /inflating zip record 'archive\/data\/0' needs 8\.0 MiB/);
    const w = loadStateDictFromTorch(zip).get('w')!; // within the default 4n + 64 MiB
    assert.deepEqual(w.shape, [1 << 21]);
    assert.ok(w.f32.every((v) => v === 0));
    // A declared size smaller than what the stream yields: inflation stops there.
    const understated = zip.slice();
    const entries = directoryEntries(understated);
    const view = new DataView(understated.buffer);
    const storageEntry = entries.find((at) => view.getUint16(at + 28, true) === 'archive/data/0'.length)!;
    view.setUint32(storageEntry + 24, 1 << 20, true);
    assertWeightFileError(() => loadTorchFile(understated), /record 'archive\/data\/0' inflates to more than its declared 1048576 bytes/);
  });

  test('a short pickle cannot hand one long value to a thousand calls', () => {
    // _codecs.encode(s, 'latin1') a thousand times over one memoised 100,000-character s:
    // each call would walk s; the unpickler charges it and gives up after a few.
    const text = 'a'.repeat(100_000);
    const head = [0x80, 0x02, 0x63, ...ascii('_codecs\nencode\n'), 0x71, 0x00,
      0x58, ...[0, 8, 16, 24].map((s) => (text.length >>> s) & 0xff), ...ascii(text), 0x71, 0x01,
      0x58, 6, 0, 0, 0, ...ascii('latin1'), 0x71, 0x02, 0x30];
    const call = [0x68, 0x00, 0x68, 0x01, 0x68, 0x02, 0x86, 0x52, 0x30]; // BINGET ×3, TUPLE2, REDUCE, POP
    const bytes = Uint8Array.from([...head, ...Array.from({ length: 1000 }, () => call).flat(), 0x4e, 0x2e]);
    refusedQuickly(() => unpickle(bytes, { globals: STATE_DICT_GLOBALS }), /more work than a \d+-byte file can ask for/);
    // Ten calls are within the allowance.
    const few = Uint8Array.from([...head, ...Array.from({ length: 10 }, () => call).flat(), 0x4e, 0x2e]);
    assert.equal(unpickle(few, { globals: STATE_DICT_GLOBALS }).value, null);
  });

  test('a pickle may make one container per 16 bytes of its file, and hold 2^20 items on its stack', () => {
    // 2 MiB of EMPTY_DICT: V8 would spend ~200 bytes and 2 µs on each of two million Maps.
    const dicts = new Uint8Array(2 << 20).fill(0x7d);
    dicts.set([0x80, 0x02]);
    dicts[dicts.length - 1] = 0x2e;
    refusedQuickly(() => unpickle(dicts, { globals: STATE_DICT_GLOBALS }),
      /more containers than a 2097152-byte file can hold \(one per 16 bytes, beyond the first 65536\)/);
    // A pickle inside a larger file (a torch zip's data.pkl) gets the file's allowance.
    assert.ok(unpickle(dicts, { globals: STATE_DICT_GLOBALS, fileBytes: 64 << 20 }).value instanceof Map);
    // 2 MiB of DUP: the stack may hold 2^20 items (or one per 8 bytes of a larger file).
    const dups = new Uint8Array(2 << 20).fill(0x32);
    dups.set([0x80, 0x02, 0x4e]);
    dups[dups.length - 1] = 0x2e;
    refusedQuickly(() => unpickle(dups, { globals: STATE_DICT_GLOBALS }), /stack of more than 1048576 items/);
  });

  test('safetensors headers of nested brackets and shapes of many dimensions are refused before they are built', () => {
    const withHeader = (text: string): Uint8Array => {
      const json = ascii(text);
      const out = new Uint8Array(8 + json.length);
      new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
      out.set(json, 8);
      return out;
    };
    refusedQuickly(() => readSafetensors(withHeader(`{"a":${'['.repeat(1 << 20)}}`)),
      /safetensors: a 1048582-byte header with 1048577 objects and arrays \(a valid one has at most one per 16 bytes\)/);
    const shape = JSON.stringify(new Array(65).fill(0));
    assertWeightFileError(() => readSafetensors(withHeader(`{"a":{"dtype":"F32","shape":${shape},"data_offsets":[0,0]}}`)),
      /tensor 'a': 65 dimensions, more than the 64 a tensor may have/);
    const npyDict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${'0, '.repeat(65)}), }`;
    const npy = new Uint8Array(10 + npyDict.length + 1);
    npy.set([0x93, ...ascii('NUMPY'), 1, 0], 0);
    new DataView(npy.buffer).setUint16(8, npyDict.length + 1, true);
    npy.set(ascii(npyDict + '\n'), 10);
    assertWeightFileError(() => readNpy(npy), /npy: 65 dimensions, more than the 64/);
  });
});

describe('restricted unpickler', () => {
  const expected = new Map<string, unknown>([
    ['ints', [0, 255, 65535, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 40, -(2n ** 63n), 2n ** 70n]],
    ['float', 1.5],
    ['text', 'héllo'],
    ['bytes', ascii('xy')],
    ['none', null],
    ['flags', [true, false]],
    ['nested', [[1, 2], [3]]],
  ]);
  // pickle.dumps(value, protocol=p) from CPython 3.11; protocol 2 spells bytes as _codecs.encode.
  const pickles: Record<number, string> = {
    2: '80027d7100285804000000696e747371015d7102284b004bff4dffff4affffffff4affffff7f4a000000808a060000000000018a0800000000000000808a09000000000000000040655805000000666c6f61747103473ff80000000000005804000000746578747104580600000068c3a96c6c6f7105580500000062797465737106635f636f646563730a656e636f64650a710758020000007879710858060000006c6174696e31710986710a52710b58040000006e6f6e65710c4e5805000000666c616773710d888986710e58060000006e6573746564710f4b014b028671105d71114b0361867112752e',
    4: '8004959b000000000000007d94288c04696e7473945d94284b004bff4dffff4affffffff4affffff7f4a000000808a060000000000018a0800000000000000808a09000000000000000040658c05666c6f617494473ff80000000000008c0474657874948c0668c3a96c6c6f948c0562797465739443027879948c046e6f6e65944e8c05666c61677394888986948c066e6573746564944b014b0286945d944b03618694752e',
  };
  for (const [protocol, text] of Object.entries(pickles)) {
    test(`protocol ${protocol} values`, () => {
      const bytes = hex(text);
      const { value, end } = unpickle(bytes, { globals: STATE_DICT_GLOBALS });
      assert.deepEqual(value, expected);
      assert.equal(end, bytes.length);
      for (let n = 0; n < bytes.length; n++) {
        assert.throws(() => unpickle(bytes.subarray(0, n), { globals: STATE_DICT_GLOBALS }), WeightFileError);
      }
    });
  }

  test('protocol 0 text opcodes', () => {
    assert.deepEqual(unpickle(ascii('(lp0\n(lp1\naI12\naF2.5\naF-inf\na.'), { globals: new Map() }).value, [[], 12, 2.5, -Infinity]);
  });

  test('globals outside the allowlist are refused before anything is called', () => {
    const stackGlobal = hex('80048c086275696c74696e73948c046576616c9493'); // 'builtins' 'eval' STACK_GLOBAL
    assertWeightFileError(() => unpickle(stackGlobal, { globals: STATE_DICT_GLOBALS }), /'builtins\.eval'/);
    assertWeightFileError(() => unpickle(ascii('cposix\nsystem\n.'), { globals: STATE_DICT_GLOBALS }), /'posix\.system'/);
  });

  test('corrupt streams give clear errors', () => {
    const globals = STATE_DICT_GLOBALS;
    assertWeightFileError(() => unpickle(hex('8002ff'), { globals }), /unknown opcode 0xff|opcode 0xff/);
    assertWeightFileError(() => unpickle(hex('80022828'), { globals }), /no STOP/);
    assertWeightFileError(() => unpickle(hex('800268'), { globals }), /truncated/);
    assertWeightFileError(() => unpickle(hex('80026805'+'2e'), { globals }), /memo entry 5/);
    assertWeightFileError(() => unpickle(hex('80022e'), { globals }), /stack underflow/);
    assertWeightFileError(() => unpickle(hex('8002580000ffff2e'), { globals }), /truncated/);
    assertWeightFileError(() => unpickle(hex('80024b014b0252' + '2e'), { globals }), /cannot call/);
    assertWeightFileError(() => unpickle(hex('80024e51' + '2e'), { globals }), /persistent/);
  });
});

describe('safetensors', () => {
  test('reads a file in the reference layout with every dtype', () => {
    const expected = expectedTensors('dtypes_expected.json');
    const loaded = readSafetensors(fixture('dtypes.safetensors'));
    assertStateDictEqual(loaded, expected, 'dtypes.safetensors');
  });

  test('write → read round trip keeps order, values, dtypes and 0-d/empty shapes', () => {
    const stateDict = loadStateDictFromTorch(fixture('model_zip.pth'));
    stateDict.set('empty', Tensor.zeros([0, 3]));
    stateDict.set('big', new Tensor(BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n), [2]));
    const bytes = writeSafetensors(stateDict, { format: 'pt' });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(headerLength % 8, 0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, unknown>;
    assert.deepEqual(header.__metadata__, { format: 'pt' });
    assert.deepEqual(header['1.num_batches_tracked'], { dtype: 'I64', shape: [], data_offsets: [512, 520] });
    assertStateDictEqual(readSafetensors(bytes), stateDict, 'round trip');
    assertStateDictEqual(readSafetensors(writeSafetensors(Object.fromEntries(stateDict))), stateDict, 'from a Record');
  });

  test('metadata is read back from the header alone; files without it give {}', () => {
    const stateDict = new Map([['w', Tensor.from([1, 2])]]);
    const classes = JSON.stringify(['T-shirt/top', 'Trouser', 'ünïcode "quoted"']);
    assert.deepEqual(readSafetensorsMetadata(writeSafetensors(stateDict, { format: 'pt', classes })), { format: 'pt', classes });
    assert.deepEqual(readSafetensorsMetadata(writeSafetensors(stateDict)), {});
    const bad = writeSafetensors(stateDict, { format: 'pt' });
    const text = new TextDecoder().decode(bad).replace('"format":"pt"', '"format":12  ');
    assert.throws(() => readSafetensorsMetadata(new TextEncoder().encode(text)), /metadata 'format' is not a string/);
  });

  test('corrupt headers and data are rejected', () => {
    const good = writeSafetensors(new Map([['a', Tensor.from([1, 2, 3])], ['b', Tensor.from([4])]]));
    const headerLength = Number(new DataView(good.buffer).getBigUint64(0, true));
    const withHeader = (text: string, data = new Uint8Array(16)): Uint8Array => {
      const json = ascii(text);
      const out = new Uint8Array(8 + json.length + data.length);
      new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
      out.set(json, 8);
      out.set(data, 8 + json.length);
      return out;
    };
    const tooLong = good.slice();
    new DataView(tooLong.buffer).setBigUint64(0, BigInt(good.length), true);
    assertWeightFileError(() => readSafetensors(tooLong), /header length/);
    assertWeightFileError(() => readSafetensors(good.subarray(0, 5)), /shorter/);
    assertWeightFileError(() => readSafetensors(good.subarray(0, good.length - 1)), /cover 16 bytes but the data section has 15/);
    assertWeightFileError(() => readSafetensors(good.subarray(0, 8 + headerLength - 3)), /header length|JSON/);
    assertWeightFileError(() => readSafetensors(withHeader('{"a": ')), /not valid UTF-8 JSON/);
    assertWeightFileError(() => readSafetensors(withHeader('[1, 2]')), /not a JSON object/);
    assertWeightFileError(() => readSafetensors(withHeader('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}')), /8 bytes but F32 \[4\] needs 16/);
    assertWeightFileError(() => readSafetensors(withHeader('{"a":{"dtype":"F32","shape":[4],"data_offsets":[4,20]}}')), /starts at byte 4/);
    assertWeightFileError(() => readSafetensors(withHeader('{"a":{"dtype":"C64","shape":[2],"data_offsets":[0,16]}}')), /unsupported dtype "C64"/);
    assertWeightFileError(() => readSafetensors(withHeader('{"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}')), /invalid shape/);
    assertWeightFileError(() => readSafetensors(withHeader(
      '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}')), /gaps or overlap/);
  });
});

describe('npy', () => {
  const range = (n: number, f: (i: number) => number): number[] => Array.from({ length: n }, (_, i) => f(i));

  test('reads arrays numpy wrote', () => {
    assertTensorEqual(readNpy(fixture('np_float32.npy')),
      new Tensor(Float32Array.from(range(6, (i) => Math.fround(Math.fround(i - 2.5) / 3))), [2, 3]), 'float32');
    assertTensorEqual(readNpy(fixture('np_int64.npy')),
      new Tensor(BigInt64Array.of(0n, -1n, 2n ** 62n, -(2n ** 63n), 5n, 2n ** 63n - 1n), [2, 3]), 'int64');
    assertTensorEqual(readNpy(fixture('np_float64.npy')), Tensor.from([1 / 3, -1e-300, 2.5].map(Math.fround)), 'float64');
    assertTensorEqual(readNpy(fixture('np_float16.npy')), Tensor.from([1.5, 65504, 2 ** -24, -0]), 'float16');
    assertTensorEqual(readNpy(fixture('np_int32.npy')), new Tensor(BigInt64Array.of(-7n, 2n ** 31n - 1n), [2]), 'int32');
    assertTensorEqual(readNpy(fixture('np_uint8.npy')), new Tensor(BigInt64Array.of(0n, 255n, 1n, 128n), [2, 2]), 'uint8');
    assertTensorEqual(readNpy(fixture('np_scalar.npy')), new Tensor(Float32Array.of(2.75), []), '0-d');
    assertTensorEqual(readNpy(fixture('np_fortran.npy')), Tensor.from(range(6, (i) => i), [2, 3]), 'fortran order');
    assertTensorEqual(readNpy(fixture('np_v2.npy')), Tensor.from([0, 1, 2, 3], [2, 2]), 'format 2.0');
    assertTensorEqual(readNpy(fixture('np_v3.npy')), Tensor.from([0, 1, 2, 3], [2, 2]), 'format 3.0');
  });

  test('writeNpy reproduces numpy.save byte for byte', () => {
    for (const name of ['np_float32.npy', 'np_int64.npy', 'np_scalar.npy']) {
      assert.deepEqual(writeNpy(readNpy(fixture(name))), new Uint8Array(fixture(name)), name);
    }
  });

  test('write → read round trip', () => {
    for (const t of [Tensor.from(range(24, (i) => i / 7), [2, 3, 4]), Tensor.int64Scalar(-5n), Tensor.zeros([0, 2]),
      new Tensor(BigInt64Array.of(2n ** 63n - 1n, -3n), [1, 2])]) {
      const bytes = writeNpy(t);
      assert.equal((bytes[8] + 10) % 64, 0, 'data 64-byte aligned');
      assertTensorEqual(readNpy(bytes), t, t.toString());
    }
  });

  test('bad files are rejected', () => {
    assertWeightFileError(() => readNpy(ascii('not an npy file')), /magic/);
    const good = new Uint8Array(fixture('np_float32.npy'));
    assertWeightFileError(() => readNpy(good.subarray(0, good.length - 1)), /data has 23 bytes, shape needs 24/);
    assertWeightFileError(() => readNpy(good.subarray(0, 40)), /header length/);
    const complex = good.slice();
    complex.set(ascii("'<c8'"), good.indexOf(0x27, 20)); // replace the descr '<f4' by '<c8'
    assertWeightFileError(() => readNpy(complex), /unsupported dtype '<c8'/);
    // A version 2 header may say it is 4 GiB long; numpy reads at most 10,000 bytes of it.
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
    const long = new Uint8Array(12 + 20_000 + 4);
    long.set([0x93, ...ascii('NUMPY'), 2, 0], 0);
    new DataView(long.buffer).setUint32(8, 20_000, true);
    long.set(ascii(dict.padEnd(19_999) + '\n'), 12);
    assertWeightFileError(() => readNpy(long), /npy: header of 20000 bytes is longer than numpy's limit of 10000/);
  });
});

describe('loadWeightsFile', () => {
  test('chooses the format by content, not extension', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'resnet-ts-formats-'));
    try {
      for (const file of ['model_zip.pth', 'model_legacy.pth']) {
        const path = join(dir, `${file}.bin`);
        await writeFile(path, fixture(file));
        assertStateDictEqual(await loadWeightsFile(path), expectedTensors('model_expected.json'), file);
      }
      const path = join(dir, 'weights.pth');
      await writeFile(path, fixture('dtypes.safetensors'));
      assert.equal((await loadWeightsFile(path)).size, expectedTensors('dtypes_expected.json').size);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  test('tensors read from a file of our own may be views of its bytes (safetensors: all); readWeights copies by default', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'resnet-ts-formats-'));
    try {
      for (const file of ['model_zip.pth', 'model_legacy.pth']) {
        const path = join(dir, file);
        await writeFile(path, fixture(file));
        const loaded = await loadWeightsFile(path);
        assertStateDictEqual(loaded, expectedTensors('model_expected.json'), file);
      }
      const bytes = writeSafetensors(new Map([['a', Tensor.from([1, 2, 3])], ['b', Tensor.from([4, 5])]]));
      const path = join(dir, 'two.safetensors');
      await writeFile(path, bytes);
      const views = await loadWeightsFile(path);
      assert.equal(views.get('a')!.data.buffer, views.get('b')!.data.buffer, 'both tensors view the bytes read');
      assert.deepEqual([...views.get('b')!.f32], [4, 5]);
      // Bytes handed in by a caller stay the caller's: copied unless copy: false.
      const copied = readWeights(bytes);
      assert.notEqual(copied.get('a')!.data.buffer, bytes.buffer);
      const aliased = readWeights(bytes, { copy: false });
      if (aliased.get('a')!.data.buffer === bytes.buffer) {
        aliased.get('a')!.f32[0] = 42;
        assert.equal(readWeights(bytes).get('a')!.f32[0], 42, 'a view writes through to the bytes');
      }
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  test('detects each format', () => {
    assert.equal(detectWeightFormat(fixture('dtypes_zip.pth')), 'torch-zip');
    assert.equal(detectWeightFormat(fixture('dtypes_legacy.pth')), 'torch-legacy');
    assert.equal(detectWeightFormat(fixture('dtypes.safetensors')), 'safetensors');
    assert.equal(detectWeightFormat(fixture('np_float32.npy')), undefined);
  });

  test('clear errors that name the path', async () => {
    await assert.rejects(loadWeightsFile(formatsPath('does-not-exist.pth')),
      (error: Error) => error instanceof WeightFileError && /does-not-exist\.pth: file not found/.test(error.message));
    await assert.rejects(loadWeightsFile(formatsPath('np_float32.npy')),
      (error: Error) => error instanceof WeightFileError && /np_float32\.npy: not a torch or safetensors file/.test(error.message));
    await assert.rejects(loadWeightsFile(formatsPath('hostile_os_system.pth')),
      (error: Error) => error instanceof WeightFileError && /hostile_os_system\.pth: refusing to load global 'os\.system'/.test(error.message));
  });
});
