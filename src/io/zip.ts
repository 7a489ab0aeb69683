// Reads the records of a zip archive, the container of torch.save files, with every count,
// offset and length checked against the bytes that exist before it is used: a directory that
// claims more entries than its bytes can hold, records that overlap or run past the end, or
// sizes no deflate stream of that length can reach are refused with a WeightFileError before
// anything is allocated or looped over. Stored records come back as views of the archive;
// deflated ones are inflated on request, stopping at their declared size. Every record read is
// checked against the CRC-32 its directory entry carries (as torch's reader does), so a flipped
// bit in a tensor's bytes is an error that names the record, not a silently different weight.
//
// Layout (PKWARE APPNOTE 6.3): [local header (30 B) + name + extra | data] per record, then the
// central directory — one header (46 B) + name + extra + comment per record — then, in zip64
// archives (torch.save writes them), the zip64 end record (56 B) and its locator (20 B), and
// last the end-of-central-directory record (22 B) + a comment of at most 65,535 bytes.

import { Inflate } from 'fflate';
import { platform } from '#platform';
import { WeightFileError } from './errors.js';

const END_SIGNATURE = 0x06054b50;
const ZIP64_END_SIGNATURE = 0x06064b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const DIRECTORY_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const END_SIZE = 22;
const ZIP64_END_SIZE = 56;
const ZIP64_LOCATOR_SIZE = 20;
/** The fixed part of a central-directory header: no entry takes fewer bytes. */
const DIRECTORY_HEADER_SIZE = 46;
const LOCAL_HEADER_SIZE = 30;
const MAX_COMMENT = 0xffff;
/** Deflate's best case: a 258-byte match in about 2 bits, 1032 bytes per input byte. */
const MAX_DEFLATE_RATIO = 1032;
/** Input fed to the inflater at a time, so one push yields at most ~16 MiB beyond the declared size. */
const INFLATE_CHUNK = 16384;

export interface ZipRecord {
  readonly name: string;
  /** 0 stored, 8 deflated. */
  readonly method: 0 | 8;
  /** Where the record's (possibly compressed) data lies in the archive. */
  readonly dataStart: number;
  readonly compressedSize: number;
  readonly size: number;
  /** CRC-32 of the (uncompressed) data, from the central directory. */
  readonly crc32: number;
}

/** A little-endian reader over the archive that refuses to read past `end`. */
class Fields {
  private readonly view: DataView;

  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  check(at: number, length: number, what: string): void {
    if (at < 0 || at + length > this.bytes.length) {
      throw new WeightFileError(`zip: ${what} at byte ${at} runs past the ${this.bytes.length}-byte archive`);
    }
  }

  u16(at: number): number {
    return this.view.getUint16(at, true);
  }

  u32(at: number): number {
    return this.view.getUint32(at, true);
  }

  /** A u64 as a number; anything beyond the archive's length is as bad as 2^64 here. */
  u64(at: number): number {
    const value = this.view.getBigUint64(at, true);
    return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
  }
}

/** The end-of-central-directory record: the last signature within the final 22 + 65,535 bytes. */
function findEnd(fields: Fields): number {
  const { bytes } = fields;
  const lowest = Math.max(0, bytes.length - END_SIZE - MAX_COMMENT);
  for (let at = bytes.length - END_SIZE; at >= lowest; at--) {
    if (bytes[at] === 0x50 && fields.u32(at) === END_SIGNATURE) return at;
  }
  throw new WeightFileError('zip: no end-of-central-directory record (not a zip archive, or truncated)');
}

/** The directory's entry count, offset and size, from the zip64 end record where there is one. */
function directoryBounds(fields: Fields, end: number): { count: number; offset: number; size: number; limit: number } {
  let count = fields.u16(end + 10);
  let size = fields.u32(end + 12);
  let offset = fields.u32(end + 16);
  let limit = end; // the directory ends before this
  const locator = end - ZIP64_LOCATOR_SIZE;
  if (locator >= 0 && fields.u32(locator) === ZIP64_LOCATOR_SIGNATURE) {
    const zip64End = fields.u64(locator + 8);
    if (zip64End > locator - ZIP64_END_SIZE || fields.u32(zip64End) !== ZIP64_END_SIGNATURE) {
      throw new WeightFileError(`zip: the zip64 locator points at byte ${zip64End}, where no zip64 end record is`);
    }
    count = fields.u64(zip64End + 32);
    size = fields.u64(zip64End + 40);
    offset = fields.u64(zip64End + 48);
    limit = zip64End;
  }
  if (offset > limit || size > limit - offset) {
    throw new WeightFileError(`zip: the central directory (${size} bytes at byte ${offset}) lies outside the archive's ${limit} bytes before its end records`);
  }
  // Each entry needs at least a fixed header: the count is checked against the bytes before any loop.
  if (count > Math.floor(size / DIRECTORY_HEADER_SIZE)) {
    throw new WeightFileError(`zip: the end record claims ${count} entries, but a ${size}-byte central directory holds at most ${Math.floor(size / DIRECTORY_HEADER_SIZE)}`);
  }
  return { count, offset, size, limit };
}

/** The zip64 extended-information extra field's values for the 32-bit fields that are 0xffffffff. */
function zip64Extra(fields: Fields, start: number, end: number, wanted: { size: boolean; compressed: boolean; offset: boolean }): number[] {
  for (let at = start; at + 4 <= end;) {
    const id = fields.u16(at);
    const length = fields.u16(at + 2);
    if (at + 4 + length > end) break;
    if (id === 0x0001) {
      const values: number[] = [];
      const count = Number(wanted.size) + Number(wanted.compressed) + Number(wanted.offset);
      if (length < 8 * count) throw new WeightFileError('zip: zip64 extra field too short');
      for (let k = 0; k < count; k++) values.push(fields.u64(at + 4 + 8 * k));
      return values;
    }
    at += 4 + length;
  }
  throw new WeightFileError('zip: a 32-bit size or offset is 0xffffffff but there is no zip64 extra field');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

/**
 * The records of the zip archive in `bytes`, by name. Refuses encrypted or otherwise compressed
 * records, duplicate names, and records that overlap, run into the directory or past the end.
 */
export function readZipDirectory(bytes: Uint8Array): Map<string, ZipRecord> {
  if (bytes.length < END_SIZE) throw new WeightFileError(`zip: ${bytes.length} bytes is too short for a zip archive`);
  const fields = new Fields(bytes);
  const { count, offset, size } = directoryBounds(fields, findEnd(fields));
  const directoryEnd = offset + size;

  const records = new Map<string, ZipRecord & { headerStart: number }>();
  let at = offset;
  for (let k = 0; k < count; k++) {
    if (at + DIRECTORY_HEADER_SIZE > directoryEnd || fields.u32(at) !== DIRECTORY_SIGNATURE) {
      throw new WeightFileError(`zip: central directory entry ${k} of ${count} at byte ${at} is missing or corrupt`);
    }
    const flags = fields.u16(at + 8);
    const method = fields.u16(at + 10);
    const crc32 = fields.u32(at + 16);
    let compressedSize = fields.u32(at + 20);
    let size = fields.u32(at + 24);
    const nameLength = fields.u16(at + 28);
    const extraLength = fields.u16(at + 30);
    const commentLength = fields.u16(at + 32);
    let headerStart = fields.u32(at + 42);
    const nameStart = at + DIRECTORY_HEADER_SIZE;
    const next = nameStart + nameLength + extraLength + commentLength;
    if (next > directoryEnd) throw new WeightFileError(`zip: central directory entry ${k} runs past the directory`);
    let name: string;
    try {
      name = (flags & 0x800 ? utf8 : latin1).decode(bytes.subarray(nameStart, nameStart + nameLength));
    } catch {
      throw new WeightFileError(`zip: entry ${k}'s name is not valid UTF-8`);
    }
    if (flags & 0x1) throw new WeightFileError(`zip: record '${name}' is encrypted`);
    if (method !== 0 && method !== 8) throw new WeightFileError(`zip: record '${name}' uses compression method ${method} (only stored and deflated are read)`);
    const wanted = { size: size === 0xffffffff, compressed: compressedSize === 0xffffffff, offset: headerStart === 0xffffffff };
    if (wanted.size || wanted.compressed || wanted.offset) {
      const values = zip64Extra(fields, nameStart + nameLength, nameStart + nameLength + extraLength, wanted);
      if (wanted.size) size = values.shift()!;
      if (wanted.compressed) compressedSize = values.shift()!;
      if (wanted.offset) headerStart = values.shift()!;
    }
    if (headerStart + LOCAL_HEADER_SIZE > offset || fields.u32(headerStart) !== LOCAL_SIGNATURE) {
      throw new WeightFileError(`zip: record '${name}' has no local header at byte ${headerStart}`);
    }
    const dataStart = headerStart + LOCAL_HEADER_SIZE + fields.u16(headerStart + 26) + fields.u16(headerStart + 28);
    if (dataStart > offset || compressedSize > offset - dataStart) {
      throw new WeightFileError(`zip: record '${name}' (${compressedSize} bytes at byte ${dataStart}) runs into the central directory at byte ${offset}`);
    }
    if (method === 0 ? size !== compressedSize : size > compressedSize * MAX_DEFLATE_RATIO + 258) {
      throw new WeightFileError(`zip: record '${name}' claims ${size} bytes from ${compressedSize} ${method === 0 ? 'stored' : 'deflated'} bytes`);
    }
    if (records.has(name)) throw new WeightFileError(`zip: two records are named '${name}'`);
    records.set(name, { name, method: method as 0 | 8, dataStart, compressedSize, size, crc32, headerStart });
    at = next;
  }

  // Records may not share bytes: otherwise one stored record could be named a thousand times.
  const ordered = [...records.values()].sort((a, b) => a.headerStart - b.headerStart);
  for (let k = 1; k < ordered.length; k++) {
    if (ordered[k - 1].dataStart + ordered[k - 1].compressedSize > ordered[k].headerStart) {
      throw new WeightFileError(`zip: records '${ordered[k - 1].name}' and '${ordered[k].name}' overlap`);
    }
  }
  return records;
}

/**
 * A record's bytes: a view of the archive if stored, a new array if deflated. Inflating stops
 * with a WeightFileError as soon as the stream yields more than the record's declared size;
 * bytes whose CRC-32 is not the directory's are a WeightFileError too.
 */
export function readZipRecord(bytes: Uint8Array, record: ZipRecord): Uint8Array {
  const data = bytes.subarray(record.dataStart, record.dataStart + record.compressedSize);
  return checkCrc(record, record.method === 0 ? data : inflateRecord(data, record));
}

function checkCrc(record: ZipRecord, data: Uint8Array): Uint8Array {
  const actual = platform.crc32(data) >>> 0;
  if (actual !== record.crc32) {
    const hex = (v: number) => v.toString(16).padStart(8, '0');
    throw new WeightFileError(`zip: record '${record.name}' is corrupt: its ${data.length} bytes have CRC-32 ${hex(actual)}, the archive's directory says ${hex(record.crc32)}`);
  }
  return data;
}

function inflateRecord(data: Uint8Array, record: ZipRecord): Uint8Array {
  const out = new Uint8Array(record.size);
  let length = 0;
  let ended = false;
  const inflater = new Inflate((chunk, final) => {
    if (chunk.length > out.length - length) {
      throw new WeightFileError(`zip: record '${record.name}' inflates to more than its declared ${record.size} bytes`);
    }
    out.set(chunk, length);
    length += chunk.length;
    ended ||= final;
  });
  try {
    for (let at = 0; at < data.length || at === 0; at += INFLATE_CHUNK) {
      inflater.push(data.subarray(at, at + INFLATE_CHUNK), at + INFLATE_CHUNK >= data.length);
    }
  } catch (error) {
    if (error instanceof WeightFileError) throw error;
    throw new WeightFileError(`zip: record '${record.name}' is not a valid deflate stream (${(error as Error).message})`, { cause: error });
  }
  if (!ended || length !== record.size) {
    throw new WeightFileError(`zip: record '${record.name}' inflates to ${length} bytes, its header says ${record.size}`);
  }
  return out;
}
