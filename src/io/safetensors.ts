// Reads and writes safetensors files, validating everything the header claims before
// touching the data.
//
// Layout: u64 little-endian N | N bytes of UTF-8 JSON header | data.
// Header: {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [..],
// "data_offsets": [begin, end]}, ...}; offsets are relative to the start of the data and
// the tensors tile it exactly (no gaps, no overlap), all little-endian and row-major.

import { Tensor, numel, shapeToString } from '../core/tensor.js';
import { ELEMENT_SIZE, type FileDType, type ReadOptions, checkRank, decodeElements, encodeLittleEndian } from './elements.js';
import { WeightFileError } from './errors.js';

const DTYPES: Readonly<Record<string, FileDType>> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64',
  I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', U16: 'uint16', U32: 'uint32', BOOL: 'bool',
};

/** The reference implementation's limit on header size. */
const MAX_HEADER_BYTES = 100_000_000;

/**
 * The shortest valid entry, `"":{"dtype":"I8","shape":[],"data_offsets":[0,0]},`, spends 17 bytes
 * per object or array; a header with more '{' and '[' than one per this many bytes is refused
 * before JSON.parse builds them (each costs V8 ~100 bytes: 100 MB of `[` would take gigabytes).
 */
const BYTES_PER_JSON_CONTAINER = 16;

const METADATA_KEY = '__metadata__';

interface Entry {
  readonly name: string;
  readonly dtype: FileDType;
  readonly shape: number[];
  readonly begin: number;
  readonly end: number;
}

function parseEntry(name: string, info: unknown): Entry {
  const bad = (what: string): never => {
    throw new WeightFileError(`safetensors: tensor '${name}' has ${what}`);
  };
  if (typeof info !== 'object' || info === null) return bad('no info object');
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPES, dtype)) return bad(`unsupported dtype ${JSON.stringify(dtype)}`);
  const isIndex = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!Array.isArray(shape)) return bad(`invalid shape ${JSON.stringify(shape)}`);
  checkRank(shape.length, `safetensors: tensor '${name}'`);
  if (!shape.every(isIndex)) return bad(`invalid shape ${JSON.stringify(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex) || offsets[0] > offsets[1]) {
    return bad(`invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const entry: Entry = { name, dtype: DTYPES[dtype], shape, begin: offsets[0], end: offsets[1] };
  const expected = numel(shape) * ELEMENT_SIZE[entry.dtype];
  if (entry.end - entry.begin !== expected) {
    bad(`${entry.end - entry.begin} bytes but ${dtype} ${shapeToString(shape)} needs ${expected}`);
  }
  return entry;
}

/** The parsed JSON header of a safetensors file and where its data section starts. */
function readHeader(bytes: Uint8Array): { header: Record<string, unknown>; dataStart: number } {
  if (bytes.length < 8) throw new WeightFileError('safetensors: file is shorter than its 8-byte header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, bytes.length - 8))) {
    throw new WeightFileError(`safetensors: header length ${headerLength} exceeds the ${bytes.length}-byte file`);
  }
  const dataStart = 8 + Number(headerLength);
  let containers = 0;
  for (let i = 8; i < dataStart; i++) if (bytes[i] === 0x7b || bytes[i] === 0x5b) containers++; // '{', '['
  if (containers > Number(headerLength) / BYTES_PER_JSON_CONTAINER + 64) {
    throw new WeightFileError(`safetensors: a ${headerLength}-byte header with ${containers} objects and arrays ` +
      `(a valid one has at most one per ${BYTES_PER_JSON_CONTAINER} bytes)`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (error) {
    throw new WeightFileError(`safetensors: header is not valid UTF-8 JSON (${(error as Error).message})`, { cause: error });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new WeightFileError('safetensors: header is not a JSON object');
  }
  return { header: header as Record<string, unknown>, dataStart };
}

/**
 * The `__metadata__` string map of a safetensors file ({} when it has none): what a training
 * run stores beside its weights (architecture, class names, epoch). Reads the header only.
 */
export function readSafetensorsMetadata(bytes: Uint8Array): Record<string, string> {
  const metadata = readHeader(bytes).header[METADATA_KEY];
  if (metadata === undefined) return {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new WeightFileError('safetensors: __metadata__ is not a JSON object');
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') throw new WeightFileError(`safetensors: metadata '${key}' is not a string`);
    out[key] = value;
  }
  return out;
}

/**
 * Every tensor of a safetensors file, in data order (which is header order for files
 * written by writeSafetensors and by the reference implementation). Float types become
 * float32, integer and bool types int64. `__metadata__` is ignored (readSafetensorsMetadata).
 */
export function readSafetensors(bytes: Uint8Array, options: ReadOptions = {}): Map<string, Tensor> {
  const { header, dataStart } = readHeader(bytes);
  const entries = Object.entries(header)
    .filter(([name]) => name !== METADATA_KEY)
    .map(([name, info]) => parseEntry(name, info))
    .sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataLength = bytes.length - dataStart;
  let expectedBegin = 0;
  for (const entry of entries) {
    if (entry.begin !== expectedBegin) {
      throw new WeightFileError(`safetensors: tensor '${entry.name}' starts at byte ${entry.begin} of the data, ` +
        `expected ${expectedBegin} (tensors must tile the data without gaps or overlap)`);
    }
    expectedBegin = entry.end;
  }
  if (expectedBegin !== dataLength) {
    throw new WeightFileError(`safetensors: tensors cover ${expectedBegin} bytes but the data section has ${dataLength}`);
  }

  const tensors = new Map<string, Tensor>();
  for (const { name, dtype, shape, begin, end } of entries) {
    const data = decodeElements(bytes.subarray(dataStart + begin, dataStart + end), dtype, true, options.copy ?? true);
    tensors.set(name, new Tensor(data, shape));
  }
  return tensors;
}

/**
 * A safetensors file holding `tensors` in the given order (float32 as F32, int64 as I64)
 * plus optional string metadata. The JSON header is padded with spaces to a multiple of
 * 8 bytes, as the reference implementation does.
 */
export function writeSafetensors(
  tensors: ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const named = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  // No prototype, so a tensor named '__proto__' is just a key.
  const header = Object.create(null) as Record<string, unknown>;
  if (metadata !== undefined) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw new TypeError(`safetensors metadata '${key}' must be a string`);
    }
    header[METADATA_KEY] = metadata;
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, tensor] of named) {
    if (name === METADATA_KEY) throw new TypeError(`'${METADATA_KEY}' cannot be a tensor name`);
    const chunk = encodeLittleEndian(tensor.data);
    header[name] = {
      dtype: tensor.dtype === 'int64' ? 'I64' : 'F32',
      shape: [...tensor.shape],
      data_offsets: [offset, offset + chunk.length],
    };
    chunks.push(chunk);
    offset += chunk.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength); // spaces
  let at = 8 + headerLength;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
