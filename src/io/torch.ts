// Reads torch.save files without torch — the zip format (torch ≥ 1.6) and the legacy
// pre-1.6 stream — through the restricted unpickler, materialising every tensor view as
// a contiguous Tensor (float types → float32, integer and bool types → int64).
//
// What a file of n bytes may cost is bounded by n: the zip directory and every record are checked
// against the archive (zip.ts), the pickle's work and containers against the file (pickle.ts), the copies
// that views need — torch loads `torch.zeros(1).expand(2**28)` as a 1-element view, we copy it out —
// against ReadOptions.expansionLimit (4n + 64 MiB by default), before anything is allocated.
//
// Zip layout:     <root>/data.pkl      the pickle; tensors reduce to _rebuild_tensor_v2
//                                      over persistent ids ('storage', type, key, location, numel)
//                 <root>/data/<key>    raw storage bytes, byte order from <root>/byteorder
//                                      (absent = little-endian); <root> varies by writer
// Legacy layout:  pickle(magic 0x1950a86a20f9469cfc6c), pickle(protocol 1001),
//                 pickle(sys_info {little_endian, type_sizes}),
//                 main pickle with ids ('storage', type, root_key, location, numel, view_metadata),
//                 pickle([storage keys]), then per key: int64 element count + raw bytes.

import { Tensor, type TensorData, numel, shapeToString } from '../core/tensor.js';
import {
  ELEMENT_SIZE, type FileDType, type ReadOptions, checkStridedView, decodeElements, defaultExpansionLimit,
  gatherStrided, isContiguous,
} from './elements.js';
import { WeightFileError } from './errors.js';
import { PickleGlobal, type PickleGlobalFactory, unpickle } from './pickle.js';
import { readZipDirectory, readZipRecord } from './zip.js';

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;

const STORAGE_TYPES: ReadonlyMap<string, FileDType> = new Map<string, FileDType>([
  ['torch.FloatStorage', 'float32'], ['torch.HalfStorage', 'float16'], ['torch.BFloat16Storage', 'bfloat16'],
  ['torch.DoubleStorage', 'float64'], ['torch.LongStorage', 'int64'], ['torch.IntStorage', 'int32'],
  ['torch.ShortStorage', 'int16'], ['torch.CharStorage', 'int8'], ['torch.ByteStorage', 'uint8'],
  ['torch.BoolStorage', 'bool'],
]);

/**
 * A storage as a persistent id names it. `start`/`length` (elements) select a window of
 * the root storage; only legacy files with view_metadata have one.
 */
class StorageRef {
  constructor(
    readonly key: string, readonly dtype: FileDType, readonly start = 0, readonly length?: number,
  ) {}
}

/** A tensor as _rebuild_tensor(_v2) describes it; becomes a Tensor once storage bytes are read. */
class TensorView {
  constructor(
    readonly storage: StorageRef, readonly offset: unknown, readonly size: unknown[], readonly stride: unknown[],
  ) {}
}

function rebuildTensor(args: unknown[]): TensorView {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef)) throw new WeightFileError('_rebuild_tensor: first argument is not a storage');
  if (!Array.isArray(size) || !Array.isArray(stride)) {
    throw new WeightFileError('_rebuild_tensor: size and stride must be tuples');
  }
  // Offset and strides are checked against the storage length once it is known.
  return new TensorView(storage, offset, size, stride);
}

function notConstructible(name: string): PickleGlobalFactory {
  return () => {
    throw new WeightFileError(`'${name}' may be named in a torch pickle but not constructed`);
  };
}

/**
 * Every global a state-dict pickle needs (and a checkpoint's argparse.Namespace). _rebuild_tensor_v2's extra arguments
 * (requires_grad, backward_hooks, and newer torch's metadata) and Parameter wrappers are
 * dropped: a loaded tensor is just its values.
 */
export const STATE_DICT_GLOBALS: ReadonlyMap<string, PickleGlobalFactory> = new Map<string, PickleGlobalFactory>([
  ['collections.OrderedDict', (args) => {
    if (args.length === 0) return new Map();
    const pairs = args[0];
    if (!Array.isArray(pairs) || !pairs.every((p) => Array.isArray(p) && p.length === 2)) {
      throw new WeightFileError('OrderedDict: expected a list of (key, value) pairs');
    }
    return new Map(pairs as [unknown, unknown][]);
  }],
  // torchvision's reference training script saves its command line (args) beside the model:
  // an attribute bag, kept as an empty dict whose attributes are its BUILD state
  // (getPickleState); nothing of it is run or applied.
  ['argparse.Namespace', (args) => {
    if (args.length !== 0) throw new WeightFileError('argparse.Namespace: expected no constructor arguments');
    return new Map();
  }],
  ['torch._utils._rebuild_tensor', rebuildTensor],
  ['torch._utils._rebuild_tensor_v2', rebuildTensor],
  ['torch._utils._rebuild_parameter', (args) => args[0]],
  ['torch._utils._rebuild_parameter_with_state', (args) => args[0]],
  // Protocol 2 pickles Python 3 bytes as _codecs.encode(text, 'latin1').
  ['_codecs.encode', ([text, encoding]) => {
    if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) {
      throw new WeightFileError(`_codecs.encode: only latin1 text is supported, got ${String(encoding)}`);
    }
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code > 0xff) throw new WeightFileError('_codecs.encode: text is not latin1');
      bytes[i] = code;
    }
    return bytes;
  }],
  ...[...STORAGE_TYPES.keys()].map((name): [string, PickleGlobalFactory] => [name, notConstructible(name)]),
]);

/** The ('storage', type, key, location, numel[, view_metadata]) tuple as a StorageRef. */
function storageFromPersistentId(pid: unknown, dtypes: Map<string, FileDType>): StorageRef {
  if (!Array.isArray(pid) || pid.length < 5 || pid.length > 6) throw new WeightFileError('persistent id is not a storage tuple');
  const [kind, type, key, , , viewMetadata] = pid.map((item) =>
    item instanceof Uint8Array ? new TextDecoder().decode(item) : item); // Python 2 files store str as bytes
  if (kind !== 'storage') throw new WeightFileError(`unsupported persistent id '${String(kind)}' (only storages)`);
  if (!(type instanceof PickleGlobal)) throw new WeightFileError('storage type is not a torch storage class');
  const dtype = STORAGE_TYPES.get(type.name);
  if (dtype === undefined) throw new WeightFileError(`unsupported storage type '${type.name}'`);
  if (typeof key !== 'string') throw new WeightFileError('storage key is not a string');
  const known = dtypes.get(key);
  if (known !== undefined && known !== dtype) {
    throw new WeightFileError(`storage '${key}' is used as both ${known} and ${dtype}`);
  }
  dtypes.set(key, dtype);
  if (viewMetadata === undefined || viewMetadata === null) return new StorageRef(key, dtype);
  // Legacy storage views: (view_key, offset, size) in elements of the root storage.
  if (!Array.isArray(viewMetadata) || viewMetadata.length !== 3) throw new WeightFileError('invalid storage view metadata');
  const [, start, length] = viewMetadata;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || start < 0 || length < 0) {
    throw new WeightFileError('invalid storage view offset or size');
  }
  return new StorageRef(key, dtype, start as number, length as number);
}

function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'unbounded bytes';
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let k = 0;
  while (bytes >= 1024 && k < units.length - 1) bytes /= 1024, k++;
  return `${k === 0 ? bytes : bytes.toFixed(bytes < 10 ? 1 : 0)} ${units[k]}`;
}

/** What a file may still grow into (ReadOptions.expansionLimit), charged before each allocation it pays for. */
class ExpansionBudget {
  private left: number;

  constructor(private readonly fileBytes: number, private readonly limit: number) {
    this.left = limit;
  }

  charge(bytes: number, what: string): void {
    if (!(bytes <= this.left)) {
      throw new WeightFileError(`${what} needs ${formatBytes(bytes)}, beyond the ${formatBytes(this.limit)} ` +
        `a ${this.fileBytes}-byte file may expand into (ReadOptions.expansionLimit, by default 4 × the file's size + 64 MiB)`);
    }
    this.left -= bytes;
  }
}

/**
 * Replaces every TensorView reachable through lists, tuples and dicts (dict values) by a
 * contiguous Tensor. Iterative, and each container is visited once, so deep or cyclic
 * pickles cannot overflow the stack or loop. `storage(key)` decodes a whole storage.
 */
function materialise(root: unknown, storage: (key: string) => TensorData, budget: ExpansionBudget): unknown {
  if (root instanceof TensorView) return toTensor(root, '<root>', storage(root.storage.key), true, budget);

  // 1. Find every place a TensorView sits, with a path for error messages.
  const slots: { view: TensorView; path: string; set: (tensor: Tensor) => void }[] = [];
  const seen = new Set<object>();
  const pending: [unknown, string][] = [[root, '']];
  const child = (path: string, key: unknown): string => (path === '' ? String(key) : `${path}/${String(key)}`);
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [container, path] = next;
    if (typeof container !== 'object' || container === null || seen.has(container)) continue;
    seen.add(container);
    const entries: Iterable<[unknown, unknown]> = Array.isArray(container)
      ? container.entries() : container instanceof Map ? container.entries() : [];
    for (const [key, item] of entries) {
      if (item instanceof TensorView) {
        const set = Array.isArray(container)
          ? (tensor: Tensor) => { container[key as number] = tensor; }
          : (tensor: Tensor) => { (container as Map<unknown, unknown>).set(key, tensor); };
        slots.push({ view: item, path: child(path, key), set });
      } else if (Array.isArray(item) || item instanceof Map) {
        pending.push([item, child(path, key)]);
      }
    }
  }

  // 2. A storage behind exactly one view can hand its decoded array to that tensor.
  const viewsOfStorage = new Map<string, Set<TensorView>>();
  for (const { view } of slots) {
    const views = viewsOfStorage.get(view.storage.key) ?? new Set();
    viewsOfStorage.set(view.storage.key, views.add(view));
  }
  const tensors = new Map<TensorView, Tensor>();
  for (const { view, path, set } of slots) {
    let tensor = tensors.get(view);
    if (tensor === undefined) {
      const exclusive = viewsOfStorage.get(view.storage.key)!.size === 1;
      tensor = toTensor(view, path, storage(view.storage.key), exclusive, budget);
      tensors.set(view, tensor);
    }
    set(tensor);
  }
  return root;
}

/**
 * One view of decoded storage `data` as a contiguous Tensor; `exclusive`: no other view needs
 * `data`. Any copy is charged to `budget` first: its size is the view's, not the storage's.
 */
function toTensor(view: TensorView, path: string, data: TensorData, exclusive: boolean, budget: ExpansionBudget): Tensor {
  const { start } = view.storage;
  const length = view.storage.length ?? data.length - start;
  if (start + length > data.length) {
    throw new WeightFileError(`tensor '${path}': storage view ends past its ${data.length}-element storage`);
  }
  checkStridedView(length, view.offset, view.size, view.stride, `tensor '${path}'`);
  const size = view.size as number[];
  const stride = view.stride as number[];
  const offset = start + (view.offset as number);
  if (exclusive && offset === 0 && numel(size) === data.length && isContiguous(size, stride)) {
    return new Tensor(data, size); // the common case: saves a copy of every weight
  }
  budget.charge(numel(size) * data.BYTES_PER_ELEMENT, `tensor '${path}': copying its view (size ${shapeToString(size)}, ` +
    `stride ${shapeToString(stride)}) of a ${length}-element storage`);
  try {
    return new Tensor(gatherStrided(data, offset, size, stride), size);
  } catch (error) {
    // Stride-0 views can claim more elements than any array holds.
    if (error instanceof RangeError) throw new WeightFileError(`tensor '${path}': ${error.message}`, { cause: error });
    throw error;
  }
}

/**
 * Decodes each storage once, on first use, so views sharing a storage share the work. `bytesOf`
 * says whether the bytes are the reader's own (then tensors may be views of them).
 */
function storageDecoder(
  dtypes: ReadonlyMap<string, FileDType>, bytesOf: (key: string) => { bytes: Uint8Array; owned: boolean },
  littleEndian: boolean, copy: boolean,
): (key: string) => TensorData {
  const decoded = new Map<string, TensorData>();
  return (key) => {
    let data = decoded.get(key);
    if (data === undefined) {
      const dtype = dtypes.get(key);
      if (dtype === undefined) throw new WeightFileError(`storage '${key}' has no type`);
      const { bytes, owned } = bytesOf(key);
      data = decodeElements(bytes, dtype, littleEndian, copy && !owned);
      decoded.set(key, data);
    }
    return data;
  };
}

function loadZip(bytes: Uint8Array, options: ReadOptions): unknown {
  const records = readZipDirectory(bytes);
  const pickles = [...records.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (pickles.length !== 1) {
    throw new WeightFileError(pickles.length === 0
      ? 'zip archive has no <root>/data.pkl: not a torch.save file'
      : `zip archive has ${pickles.length} data.pkl records`);
  }
  const root = pickles[0].slice(0, -'data.pkl'.length);
  const budget = new ExpansionBudget(bytes.length, options.expansionLimit ?? defaultExpansionLimit(bytes.length));
  /** A record's bytes; owned: inflated into an array of our own rather than a view of `bytes`. */
  const file = (name: string): { bytes: Uint8Array; owned: boolean } | undefined => {
    const record = records.get(root + name);
    if (record === undefined) return undefined;
    if (record.method !== 0) budget.charge(record.size, `inflating zip record '${record.name}'`);
    return { bytes: readZipRecord(bytes, record), owned: record.method !== 0 };
  };

  const byteorder = file('byteorder');
  const order = byteorder === undefined ? 'little' : new TextDecoder().decode(byteorder.bytes).trim();
  if (order !== 'little' && order !== 'big') throw new WeightFileError(`unknown byteorder '${order}'`);

  const dtypes = new Map<string, FileDType>();
  const { value } = unpickle(file('data.pkl')!.bytes, {
    globals: STATE_DICT_GLOBALS,
    persistentLoad: (pid) => storageFromPersistentId(pid, dtypes),
    fileBytes: bytes.length,
  });
  const bytesOf = (key: string): { bytes: Uint8Array; owned: boolean } => {
    const data = file(`data/${key}`);
    if (data === undefined) throw new WeightFileError(`storage '${key}' is missing from the zip archive`);
    return data;
  };
  return materialise(value, storageDecoder(dtypes, bytesOf, order === 'little', options.copy ?? true), budget);
}

function loadLegacy(bytes: Uint8Array, options: ReadOptions): unknown {
  const noGlobals = { globals: new Map<string, PickleGlobalFactory>() };
  const magic = unpickle(bytes, noGlobals);
  if (magic.value !== LEGACY_MAGIC) throw new WeightFileError('not a torch file: legacy magic number missing');
  const protocol = unpickle(bytes, noGlobals, magic.end);
  if (protocol.value !== LEGACY_PROTOCOL_VERSION) {
    throw new WeightFileError(`unsupported legacy torch protocol version ${String(protocol.value)}`);
  }
  const sysInfo = unpickle(bytes, noGlobals, protocol.end);
  const littleEndian = !(sysInfo.value instanceof Map && sysInfo.value.get('little_endian') === false);

  const dtypes = new Map<string, FileDType>();
  const main = unpickle(bytes, {
    globals: STATE_DICT_GLOBALS,
    persistentLoad: (pid) => storageFromPersistentId(pid, dtypes),
  }, sysInfo.end);
  const keys = unpickle(bytes, noGlobals, main.end);
  if (!Array.isArray(keys.value) || !keys.value.every((key) => typeof key === 'string')) {
    throw new WeightFileError('legacy storage key list is not a list of strings');
  }

  // Per key: int64 element count, then count · element size raw bytes.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const storages = new Map<string, Uint8Array>();
  let pos = keys.end;
  for (const key of keys.value as string[]) {
    const dtype = dtypes.get(key);
    if (dtype === undefined) throw new WeightFileError(`storage '${key}' is listed but never used`);
    if (pos + 8 > bytes.length) throw new WeightFileError(`truncated file: storage '${key}' is missing`);
    const count = view.getBigInt64(pos, littleEndian);
    const byteLength = count * BigInt(ELEMENT_SIZE[dtype]);
    if (count < 0n || byteLength > BigInt(bytes.length - pos - 8)) {
      throw new WeightFileError(`truncated file: storage '${key}' needs ${byteLength} bytes, ${bytes.length - pos - 8} left`);
    }
    storages.set(key, bytes.subarray(pos + 8, pos + 8 + Number(byteLength)));
    pos += 8 + Number(byteLength);
  }
  const bytesOf = (key: string): { bytes: Uint8Array; owned: boolean } => {
    const data = storages.get(key);
    if (data === undefined) throw new WeightFileError(`storage '${key}' is missing from the file`);
    return { bytes: data, owned: false };
  };
  const budget = new ExpansionBudget(bytes.length, options.expansionLimit ?? defaultExpansionLimit(bytes.length));
  return materialise(main.value, storageDecoder(dtypes, bytesOf, littleEndian, options.copy ?? true), budget);
}

export function isTorchZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b; // "PK"
}

/**
 * Legacy files open with the magic number pickled at protocol ≥ 2: PROTO n, LONG1 10; at
 * protocol 4 and 5 (torch.save's pickle_protocol) a FRAME and its 8-byte length come between.
 */
export function isTorchLegacy(bytes: Uint8Array): boolean {
  if (bytes.length < 4 || bytes[0] !== 0x80) return false;
  const at = bytes[2] === 0x95 ? 11 : 2;
  return bytes.length >= at + 2 && bytes[at] === 0x8a && bytes[at + 1] === 0x0a;
}

/**
 * The object a torch.save file holds, with Python values mapped as pickle.ts describes
 * and every tensor as a contiguous Tensor. Throws WeightFileError for anything else.
 */
export function loadTorchFile(bytes: Uint8Array, options: ReadOptions = {}): unknown {
  if (isTorchZip(bytes)) return loadZip(bytes, options);
  if (isTorchLegacy(bytes)) return loadLegacy(bytes, options);
  throw new WeightFileError('not a torch file (neither a torch.save zip archive nor a legacy torch pickle)');
}

function isTensorDict(value: unknown): value is Map<string, Tensor> {
  if (!(value instanceof Map)) return false;
  for (const [key, item] of value) if (typeof key !== 'string' || !(item instanceof Tensor)) return false;
  return true;
}

/** Checkpoint keys that commonly wrap a state dict. */
const CHECKPOINT_KEYS = ['state_dict', 'model_state_dict', 'model'];

/**
 * A torch.save file's state dict as name → Tensor in file order. Accepts a bare state
 * dict, or a checkpoint dict with exactly one of 'state_dict' / 'model_state_dict' /
 * 'model' holding a dict whose values are all tensors.
 */
export function loadStateDictFromTorch(bytes: Uint8Array, options: ReadOptions = {}): Map<string, Tensor> {
  const value = loadTorchFile(bytes, options);
  if (isTensorDict(value)) return value;
  if (value instanceof Map) {
    const candidates = CHECKPOINT_KEYS.filter((key) => isTensorDict(value.get(key)));
    if (candidates.length === 1) return value.get(candidates[0]) as Map<string, Tensor>;
    if (candidates.length > 1) {
      throw new WeightFileError(`ambiguous checkpoint: ${candidates.map((k) => `'${k}'`).join(' and ')} both hold tensors`);
    }
    const keys = [...value.keys()].slice(0, 8).map(String).join(', ');
    throw new WeightFileError(`not a state dict: a dict whose values are not all tensors (keys: ${keys})`);
  }
  throw new WeightFileError(`not a state dict: the file holds ${value instanceof Tensor ? 'a single tensor' : typeof value}`);
}
