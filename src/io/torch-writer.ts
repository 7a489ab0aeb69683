// Writes a state dict as torch.save does (the zip format of torch ≥ 1.6), so that
// `model.load_state_dict(torch.load(path))` takes it in PyTorch: a protocol-2 pickle of an
// OrderedDict whose values are torch._utils._rebuild_tensor_v2 calls over persistent-id
// storages, plus one raw little-endian record per storage.
//
// Zip layout (stored, not compressed; every record's data starts on a 64-byte boundary, as
// torch's writer pads it with an 'FB' extra field so storages can be memory-mapped):
//   archive/data.pkl     the pickle
//   archive/byteorder    "little"
//   archive/data/<key>   storage <key> ("0", "1", …): the tensor's elements
//   archive/version      "3\n", the record format version torch writes

import { zipSync, type ZipOptions } from 'fflate';
import { Tensor } from '../core/tensor.js';
import { encodeLittleEndian } from './elements.js';

// --- a pickle writer for the values a state dict needs -------------------------------------

/** A Python global, written as GLOBAL "module\nname\n". */
class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
}

/** callable(*args), written as callable args REDUCE. */
class PyCall {
  constructor(readonly callable: PyGlobal, readonly args: PyValue[]) {}
}

/** An object the unpickler resolves through persistent_load (torch: a storage). */
class PyPersistent {
  constructor(readonly id: PyValue[]) {}
}

/** collections.OrderedDict(items), pickled as OrderedDict's __reduce__ does: OrderedDict() then SETITEMS. */
class PyOrderedDict {
  constructor(readonly items: [string, PyValue][]) {}
}

/** Python values as pickled here: arrays are tuples; numbers must be integers. */
type PyValue = null | boolean | number | string | PyValue[] | PyGlobal | PyCall | PyPersistent | PyOrderedDict;

const OP = {
  PROTO: 0x80, STOP: 0x2e, MARK: 0x28, NONE: 0x4e, NEWTRUE: 0x88, NEWFALSE: 0x89,
  BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, LONG1: 0x8a, BINUNICODE: 0x58,
  EMPTY_TUPLE: 0x29, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87, TUPLE: 0x74,
  GLOBAL: 0x63, REDUCE: 0x52, BINPERSID: 0x51, SETITEMS: 0x75,
  BINPUT: 0x71, LONG_BINPUT: 0x72, BINGET: 0x68, LONG_BINGET: 0x6a,
} as const;

/** pickle.dumps(value, protocol=2) for PyValue; globals and strings are memoised as CPython does. */
class Pickler {
  private readonly bytes: number[] = [];
  private readonly memo = new Map<string, number>();
  private readonly utf8 = new TextEncoder();

  dump(value: PyValue): Uint8Array {
    this.bytes.push(OP.PROTO, 2);
    this.write(value);
    this.bytes.push(OP.STOP);
    return Uint8Array.from(this.bytes);
  }

  private u32(n: number): void {
    this.bytes.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }

  /** Pushes a memoised value with BINGET, or returns false after recording where the next one goes. */
  private fromMemo(key: string): boolean {
    const index = this.memo.get(key);
    if (index === undefined) return false;
    if (index < 256) this.bytes.push(OP.BINGET, index);
    else this.bytes.push(OP.LONG_BINGET), this.u32(index);
    return true;
  }

  private memoize(key: string): void {
    const index = this.memo.size;
    this.memo.set(key, index);
    if (index < 256) this.bytes.push(OP.BINPUT, index);
    else this.bytes.push(OP.LONG_BINPUT), this.u32(index);
  }

  private write(value: PyValue): void {
    if (value === null) this.bytes.push(OP.NONE);
    else if (typeof value === 'boolean') this.bytes.push(value ? OP.NEWTRUE : OP.NEWFALSE);
    else if (typeof value === 'number') this.int(value);
    else if (typeof value === 'string') this.string(value);
    else if (Array.isArray(value)) this.tuple(value);
    else if (value instanceof PyGlobal) this.global(value);
    else if (value instanceof PyCall) {
      this.global(value.callable);
      this.tuple(value.args);
      this.bytes.push(OP.REDUCE);
    } else if (value instanceof PyPersistent) {
      this.tuple(value.id);
      this.bytes.push(OP.BINPERSID);
    } else {
      this.global(ORDERED_DICT);
      this.bytes.push(OP.EMPTY_TUPLE, OP.REDUCE);
      // In batches of 1000, as CPython's _batch_setitems.
      for (let i = 0; i < value.items.length; i += 1000) {
        this.bytes.push(OP.MARK);
        for (const [key, item] of value.items.slice(i, i + 1000)) {
          this.string(key);
          this.write(item);
        }
        this.bytes.push(OP.SETITEMS);
      }
    }
  }

  private int(n: number): void {
    if (!Number.isSafeInteger(n)) throw new RangeError(`pickle: ${n} is not a safe integer`);
    if (n >= 0 && n < 0x100) this.bytes.push(OP.BININT1, n);
    else if (n >= 0 && n < 0x10000) this.bytes.push(OP.BININT2, n & 0xff, n >>> 8);
    else if (n >= -0x80000000 && n < 0x80000000) this.bytes.push(OP.BININT), this.u32(n);
    else {
      // LONG1: little-endian two's complement in as few bytes as keep the sign.
      const digits: number[] = [];
      let v = BigInt(n);
      do {
        digits.push(Number(BigInt.asUintN(8, v)));
        v >>= 8n;
      } while (!(v === 0n && digits[digits.length - 1] < 0x80) && !(v === -1n && digits[digits.length - 1] >= 0x80));
      this.bytes.push(OP.LONG1, digits.length, ...digits);
    }
  }

  private string(s: string): void {
    const key = `s:${s}`;
    if (this.fromMemo(key)) return;
    const utf8 = this.utf8.encode(s);
    this.bytes.push(OP.BINUNICODE);
    this.u32(utf8.length);
    for (const b of utf8) this.bytes.push(b);
    this.memoize(key);
  }

  private tuple(items: PyValue[]): void {
    if (items.length === 0) {
      this.bytes.push(OP.EMPTY_TUPLE);
      return;
    }
    if (items.length > 3) this.bytes.push(OP.MARK);
    for (const item of items) this.write(item);
    this.bytes.push(items.length > 3 ? OP.TUPLE : [OP.TUPLE1, OP.TUPLE2, OP.TUPLE3][items.length - 1]);
  }

  private global(g: PyGlobal): void {
    const key = `g:${g.module}.${g.name}`;
    if (this.fromMemo(key)) return;
    this.bytes.push(OP.GLOBAL);
    for (const b of this.utf8.encode(`${g.module}\n${g.name}\n`)) this.bytes.push(b);
    this.memoize(key);
  }
}

const ORDERED_DICT = new PyGlobal('collections', 'OrderedDict');
const REBUILD_TENSOR_V2 = new PyGlobal('torch._utils', '_rebuild_tensor_v2');
const STORAGE_CLASS = { float32: new PyGlobal('torch', 'FloatStorage'), int64: new PyGlobal('torch', 'LongStorage') } as const;

/** Row-major strides of a contiguous tensor, in elements. */
function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    strides[k] = step;
    step *= shape[k];
  }
  return strides;
}

// --- the zip archive --------------------------------------------------------------------------

/** torch's kFieldAlignment: each record's data begins at a multiple of this. */
const RECORD_ALIGNMENT = 64;
/** The zip extra-field id torch pads records with: the bytes 'F', 'B' read as a little-endian u16. */
const PADDING_FIELD_ID = 0x4246;
const LOCAL_HEADER_SIZE = 30;
/** Date stamped on every record, so equal state dicts give identical files (DOS time starts in 1980). */
const FIXED_MTIME = new Date(1980, 0, 1);

const ARCHIVE = 'archive';

/**
 * The bytes of `torch.save(state_dict, f)` for a state dict of float32 and int64 tensors,
 * keys in the given order. torch.load gives back an OrderedDict of float32 / int64 tensors
 * (num_batches_tracked stays int64) that load_state_dict(strict=True) accepts.
 */
export function writeTorchStateDict(stateDict: ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>): Uint8Array {
  const entries = stateDict instanceof Map ? [...stateDict] : Object.entries(stateDict);
  const storages: Uint8Array[] = [];
  const items: [string, PyValue][] = entries.map(([name, tensor]) => {
    if (!(tensor instanceof Tensor) || tensor.isMeta) throw new TypeError(`state dict entry '${name}' is not a tensor with data`);
    const key = String(storages.length);
    storages.push(encodeLittleEndian(tensor.data));
    const storage = new PyPersistent(['storage', STORAGE_CLASS[tensor.dtype], key, 'cpu', tensor.size]);
    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks)
    return [name, new PyCall(REBUILD_TENSOR_V2, [storage, 0, [...tensor.shape], contiguousStrides(tensor.shape), false, new PyOrderedDict([])])];
  });
  const records: [string, Uint8Array][] = [
    ['data.pkl', new Pickler().dump(new PyOrderedDict(items))],
    ['byteorder', new TextEncoder().encode('little')],
    ...storages.map((bytes, i): [string, Uint8Array] => [`data/${i}`, bytes]),
    ['version', new TextEncoder().encode('3\n')],
  ];
  return alignedStoredZip(records.map(([name, bytes]) => [`${ARCHIVE}/${name}`, bytes]));
}

/**
 * An uncompressed zip of `records`, in order, where each record's data starts at a multiple
 * of RECORD_ALIGNMENT: fflate writes local headers back to back (30 bytes + name + extra
 * fields + data), so the padding each record needs is known before writing.
 */
function alignedStoredZip(records: [string, Uint8Array][]): Uint8Array {
  const files: Record<string, [Uint8Array, ZipOptions]> = {};
  let offset = 0;
  for (const [name, data] of records) {
    if (Object.hasOwn(files, name)) throw new Error(`duplicate zip record ${name}`);
    const headerEnd = offset + LOCAL_HEADER_SIZE + new TextEncoder().encode(name).length + 4; // + the padding field's id and length
    const padding = (RECORD_ALIGNMENT - (headerEnd % RECORD_ALIGNMENT)) % RECORD_ALIGNMENT;
    files[name] = [data, { level: 0, mtime: FIXED_MTIME, extra: { [PADDING_FIELD_ID]: new Uint8Array(padding).fill(0x5a) } }]; // 'Z'
    offset = headerEnd + padding + data.length;
  }
  return zipSync(files);
}
