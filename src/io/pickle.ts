// A restricted unpickler for the pickles torch.save writes (protocols 2–5): it builds
// plain values, resolves globals only through the caller's allowlist, and never runs
// anything else, so a hostile .pth can at worst be refused.
//
// Python values become:   None → null, bool → boolean, int → number (bigint beyond
// ±2^53), float → number, str → string, bytes/bytearray → Uint8Array, tuple and list →
// Array, dict → Map, set/frozenset → Set. An allowlisted global becomes a PickleGlobal;
// REDUCE / NEWOBJ on it call its factory with the argument tuple. BUILD never calls
// anything: the state is recorded and can be read back with getPickleState().
//
// Work is bounded by the input: every opcode reads at least one byte and does work in
// proportion to the bytes it reads or the items it pops, except where a memoised value is
// handed on again (a factory's arguments, a persistent id). Those are charged by their size
// against WORK_PER_BYTE · length, so a short pickle cannot pass one long list to a thousand calls.
// Memory is bounded too: a one-byte opcode can make a container (an empty dict costs V8 about
// 200 bytes and 2 µs), so a pickle may make at most one per BYTES_PER_CONTAINER bytes of its file,
// and its stack may hold at most STACK_ITEMS items (CPython's pickler pushes at most 1,000 at a time).

import { WeightFileError } from './errors.js';

/** Builds the value for REDUCE / NEWOBJ of an allowlisted global from its argument tuple. */
export type PickleGlobalFactory = (args: unknown[]) => unknown;

/** What GLOBAL / STACK_GLOBAL push: an allowlisted "module.name" and its factory. */
export class PickleGlobal {
  constructor(readonly name: string, readonly factory: PickleGlobalFactory) {}
}

export interface UnpickleOptions {
  /** The allowlist, "module.name" → factory; any other global is refused. */
  readonly globals: ReadonlyMap<string, PickleGlobalFactory>;
  /** Resolves persistent ids (BINPERSID / PERSID); without it they are refused. */
  readonly persistentLoad?: (pid: unknown) => unknown;
  /**
   * Size of the file the pickle belongs to (a torch zip's data.pkl is a small part of it): the
   * pickle's allowances of work and containers scale with it. Default: the bytes from `start` on.
   */
  readonly fileBytes?: number;
}

export interface UnpickleResult {
  readonly value: unknown;
  /** Offset just past the STOP opcode, where a following pickle would begin. */
  readonly end: number;
}

const buildStates = new WeakMap<object, unknown>();

/** The state a BUILD opcode applied to `obj` (e.g. an OrderedDict's {'_metadata': ...}). */
export function getPickleState(obj: object): unknown {
  return buildStates.get(obj);
}

/** Python ints up to this many bytes; longer LONG1/LONG4 payloads are refused (no state dict needs them). */
const MAX_LONG_BYTES = 64;

/**
 * Items of arguments and persistent ids a pickle may hand over per byte of input, plus a fixed
 * allowance. A torch pickle hands over fewer than one: each call's arguments are mostly fresh.
 */
const WORK_PER_BYTE = 8;
const WORK_ALLOWANCE = 1 << 20;

/**
 * Containers (dicts, lists, tuples, sets, marks, call results) a pickle may make: one per this
 * many bytes of its file, plus a fixed allowance. A torch.save file has one per 100+ bytes (its
 * storages' bytes count too); an all-`}` pickle of 8 MiB would otherwise take 1.7 GB and 16 s.
 */
const BYTES_PER_CONTAINER = 16;
const CONTAINER_ALLOWANCE = 1 << 16;

/** Items the stack may hold, counting those below its MARKs: this many, or one per 8 bytes of the file. */
const STACK_ITEMS = 1 << 20;

/** EMPTY_DICT/LIST/TUPLE/SET, MARK, TUPLE1-3, DICT, FROZENSET, REDUCE, NEWOBJ(_EX), OBJ, INST, (BIN)PERSID. */
const MAKES_CONTAINER = new Uint8Array(256);
for (const code of [0x7d, 0x5d, 0x29, 0x8f, 0x28, 0x85, 0x86, 0x87, 0x64, 0x91, 0x52, 0x81, 0x92, 0x6f, 0x69, 0x51, 0x50]) {
  MAKES_CONTAINER[code] = 1;
}

/** The items a factory may look at without recursing: a container's length, a string's or bytes' length. */
function shallowSize(value: unknown): number {
  if (Array.isArray(value) || typeof value === 'string' || value instanceof Uint8Array) return 1 + value.length;
  if (value instanceof Map || value instanceof Set) return 1 + value.size;
  return 1;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Unpickles one pickle starting at `start`. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions, start = 0): UnpickleResult {
  return new Unpickler(bytes, options, start).load();
}

class Unpickler {
  private pos: number;
  private stack: unknown[] = [];
  private readonly metastack: unknown[][] = [];
  private readonly memo = new Map<number, unknown>();
  private readonly view: DataView;
  /** Opcode being executed and where, for error messages. */
  private opcodeName = '';
  private opcodeAt = 0;
  /** Work the rest of this pickle may do on values handed on again (see WORK_PER_BYTE). */
  private workLeft: number;
  /** Containers the rest of this pickle may make (see BYTES_PER_CONTAINER). */
  private containersLeft: number;
  /** Items in the stacks saved by MARK, and how many the stacks may hold together (see STACK_ITEMS). */
  private itemsBelow = 0;
  private readonly stackLimit: number;

  constructor(private readonly bytes: Uint8Array, private readonly options: UnpickleOptions, start: number) {
    this.pos = start;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const size = options.fileBytes ?? bytes.length - start;
    this.workLeft = WORK_PER_BYTE * size + WORK_ALLOWANCE;
    this.containersLeft = Math.floor(size / BYTES_PER_CONTAINER) + CONTAINER_ALLOWANCE;
    this.stackLimit = Math.max(STACK_ITEMS, size / 8);
  }

  /** Charges the work of looking at `values` once more; fails when the pickle has used up its share. */
  private charge(values: readonly unknown[]): void {
    let work = 1;
    for (const value of values) work += shallowSize(value);
    this.workLeft -= work;
    if (this.workLeft < 0) {
      this.fail(`more work than a ${this.options.fileBytes ?? this.bytes.length}-byte file can ask for (the same values passed to calls over and over)`);
    }
  }

  private fail(message: string): never {
    throw new WeightFileError(`pickle: ${message} (opcode ${this.opcodeName} at byte ${this.opcodeAt})`);
  }

  // --- reading the opcode stream; every read is bounds-checked ----------------------------

  private need(n: number): number {
    if (n > this.bytes.length - this.pos) this.fail(`truncated: needs ${n} more bytes, ${this.bytes.length - this.pos} left`);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  private u8(): number {
    return this.bytes[this.need(1)];
  }

  private u16(): number {
    return this.view.getUint16(this.need(2), true);
  }

  private u32(): number {
    return this.view.getUint32(this.need(4), true);
  }

  private i32(): number {
    return this.view.getInt32(this.need(4), true);
  }

  private u64(): number {
    const at = this.need(8);
    const value = this.view.getBigUint64(at, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`length ${value} is too large`);
    return Number(value);
  }

  private take(n: number): Uint8Array {
    // A view into the input; bytes values are copied with new Uint8Array(...), since
    // .slice() on a node Buffer would still share memory.
    const at = this.need(n);
    return this.bytes.subarray(at, at + n);
  }

  private line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) this.fail('truncated: missing end of line');
    const text = this.text(this.bytes.subarray(this.pos, end));
    this.pos = end + 1;
    return text;
  }

  private text(raw: Uint8Array): string {
    try {
      return utf8.decode(raw);
    } catch {
      return this.fail('string is not valid UTF-8');
    }
  }

  // --- the stack -------------------------------------------------------------------------

  private push(value: unknown): void {
    if (this.stack.length + this.itemsBelow >= this.stackLimit) this.fail(`stack of more than ${this.stackLimit} items`);
    this.stack.push(value);
  }

  private pop(): unknown {
    if (this.stack.length === 0) this.fail('stack underflow');
    return this.stack.pop();
  }

  private top(): unknown {
    if (this.stack.length === 0) this.fail('stack underflow');
    return this.stack[this.stack.length - 1];
  }

  private mark(): void {
    this.metastack.push(this.stack);
    this.itemsBelow += this.stack.length;
    this.stack = [];
  }

  /** The items pushed since the last MARK; restores the stack below it. */
  private popMark(): unknown[] {
    const items = this.stack;
    const below = this.metastack.pop();
    if (below === undefined) this.fail('no MARK to pop to');
    this.itemsBelow -= below.length;
    this.stack = below;
    return items;
  }

  private memoGet(index: number): unknown {
    if (!this.memo.has(index)) this.fail(`memo entry ${index} was never stored`);
    return this.memo.get(index);
  }

  private memoPut(index: number): void {
    this.memo.set(index, this.top());
  }

  // --- values ----------------------------------------------------------------------------

  private pushInt(value: bigint): void {
    const small = value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER);
    this.push(small ? Number(value) : value);
  }

  /** LONG1 / LONG4 payload: little-endian two's complement. */
  private long(n: number): void {
    if (n < 0 || n > MAX_LONG_BYTES) this.fail(`integer of ${n} bytes is not supported`);
    const raw = this.take(n);
    let value = 0n;
    for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(raw[i]);
    if (n > 0 && raw[n - 1] & 0x80) value -= 1n << BigInt(8 * n);
    this.pushInt(value);
  }

  private textInt(text: string): bigint {
    const digits = text.endsWith('L') ? text.slice(0, -1) : text;
    if (!/^[+-]?\d{1,40}$/.test(digits)) this.fail(`invalid integer literal '${text}'`);
    return BigInt(digits);
  }

  private resolveGlobal(module: string, name: string): PickleGlobal {
    const qualified = `${module}.${name}`;
    const factory = this.options.globals.get(qualified);
    if (factory === undefined) {
      // A TorchScript class or a module class: the file is a TorchScript archive or a whole
      // pickled model (torch.save(model)), which only Python code can rebuild; its state dict
      // is what loads here.
      const hint = module === '__torch__' || module.startsWith('__torch__.')
        ? ": the file is a TorchScript archive (torch.jit.save), which holds the model's code, not a state dict; in Python, torch.save(torch.jit.load(path).state_dict(), 'weights.pth') writes one that loads"
        : /^(torchvision\.models|torch\.nn\.modules|__main__)\./.test(qualified) && /^[A-Z]/.test(name)
          ? ': the file holds a whole pickled model (torch.save(model)), not a state dict; in Python, torch.save(model.state_dict(), path) writes one that loads'
          : '';
      throw new WeightFileError(`refusing to load global '${qualified}' (not in the state-dict allowlist)${hint}`);
    }
    return new PickleGlobal(qualified, factory);
  }

  private call(callable: unknown, args: unknown): unknown {
    if (!(callable instanceof PickleGlobal)) this.fail(`cannot call ${describe(callable)}`);
    if (!Array.isArray(args)) this.fail(`arguments to ${callable.name} are ${describe(args)}, not a tuple`);
    this.charge(args);
    return callable.factory(args);
  }

  private persistent(pid: unknown): unknown {
    const load = this.options.persistentLoad;
    if (load === undefined) this.fail('persistent id found but no persistent_load was supplied');
    this.charge(Array.isArray(pid) ? pid : [pid]);
    return load(pid);
  }

  private setItems(target: unknown, items: unknown[]): void {
    if (!(target instanceof Map)) this.fail(`cannot set items on ${describe(target)}`);
    if (items.length % 2 !== 0) this.fail('odd number of items for a dict');
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
  }

  private append(target: unknown, items: unknown[]): void {
    if (!Array.isArray(target)) this.fail(`cannot append to ${describe(target)}`);
    for (const item of items) target.push(item);
  }

  // --- the opcode loop: every iteration consumes at least one byte, so it ends ------------

  load(): UnpickleResult {
    const bytes = this.bytes;
    while (this.pos < bytes.length) {
      this.opcodeAt = this.pos;
      const code = bytes[this.pos++];
      this.opcodeName = OPCODE_NAMES.get(code) ?? `0x${code.toString(16).padStart(2, '0')}`;
      if (MAKES_CONTAINER[code] && --this.containersLeft < 0) {
        this.fail(`more containers than a ${this.options.fileBytes ?? bytes.length}-byte file can hold (one per ${BYTES_PER_CONTAINER} bytes, beyond the first ${CONTAINER_ALLOWANCE})`);
      }
      switch (code) {
        case 0x80: { // PROTO
          const version = this.u8();
          if (version > 5) this.fail(`unsupported pickle protocol ${version}`);
          break;
        }
        case 0x95: this.u64(); break; // FRAME: a length hint only
        case 0x2e: { // STOP
          const value = this.pop();
          return { value, end: this.pos };
        }

        // Containers.
        case 0x7d: this.push(new Map()); break; // EMPTY_DICT
        case 0x5d: this.push([]); break; // EMPTY_LIST
        case 0x29: this.push([]); break; // EMPTY_TUPLE
        case 0x8f: this.push(new Set()); break; // EMPTY_SET
        case 0x28: this.mark(); break; // MARK
        case 0x85: this.push([this.pop()]); break; // TUPLE1
        case 0x86: { // TUPLE2
          const b = this.pop();
          this.push([this.pop(), b]);
          break;
        }
        case 0x87: { // TUPLE3
          const c = this.pop();
          const b = this.pop();
          this.push([this.pop(), b, c]);
          break;
        }
        case 0x74: this.push(this.popMark()); break; // TUPLE
        case 0x6c: this.push(this.popMark()); break; // LIST
        case 0x64: { // DICT
          const dict = new Map();
          this.setItems(dict, this.popMark());
          this.push(dict);
          break;
        }
        case 0x91: this.push(new Set(this.popMark())); break; // FROZENSET
        case 0x73: { // SETITEM
          const value = this.pop();
          const key = this.pop();
          this.setItems(this.top(), [key, value]);
          break;
        }
        case 0x75: { // SETITEMS
          const items = this.popMark();
          this.setItems(this.top(), items);
          break;
        }
        case 0x61: { // APPEND
          const item = this.pop();
          this.append(this.top(), [item]);
          break;
        }
        case 0x65: { // APPENDS
          const items = this.popMark();
          this.append(this.top(), items);
          break;
        }
        case 0x90: { // ADDITEMS
          const items = this.popMark();
          const set = this.top();
          if (!(set instanceof Set)) this.fail(`cannot add items to ${describe(set)}`);
          for (const item of items) set.add(item);
          break;
        }

        // Scalars.
        case 0x4e: this.push(null); break; // NONE
        case 0x88: this.push(true); break; // NEWTRUE
        case 0x89: this.push(false); break; // NEWFALSE
        case 0x4a: this.push(this.i32()); break; // BININT
        case 0x4b: this.push(this.u8()); break; // BININT1
        case 0x4d: this.push(this.u16()); break; // BININT2
        case 0x8a: this.long(this.u8()); break; // LONG1
        case 0x8b: this.long(this.i32()); break; // LONG4
        case 0x49: { // INT (protocol 0; "01"/"00" are True/False)
          const text = this.line();
          if (text === '01' || text === '00') this.push(text === '01');
          else this.pushInt(this.textInt(text));
          break;
        }
        case 0x4c: this.pushInt(this.textInt(this.line())); break; // LONG (protocol 0)
        case 0x47: this.push(this.view.getFloat64(this.need(8), false)); break; // BINFLOAT: big-endian
        case 0x46: { // FLOAT (protocol 0)
          const text = this.line().trim();
          const special = /^([+-]?)(inf|nan)$/i.exec(text); // Python's repr of non-finite floats
          const value = special ? (special[2].toLowerCase() === 'nan' ? NaN : special[1] === '-' ? -Infinity : Infinity)
            : Number(text);
          if (text === '' || (Number.isNaN(value) && !special)) this.fail(`invalid float literal '${text}'`);
          this.push(value);
          break;
        }
        case 0x58: this.push(this.text(this.take(this.u32()))); break; // BINUNICODE
        case 0x8c: this.push(this.text(this.take(this.u8()))); break; // SHORT_BINUNICODE
        case 0x8d: this.push(this.text(this.take(this.u64()))); break; // BINUNICODE8
        case 0x56: this.push(rawUnicodeEscape(this.line())); break; // UNICODE (protocol 0)
        // Python 2 str: torch.load decodes it as UTF-8 text.
        case 0x54: { // BINSTRING
          const n = this.i32();
          if (n < 0) this.fail(`negative string length ${n}`);
          this.push(this.text(this.take(n)));
          break;
        }
        case 0x55: this.push(this.text(this.take(this.u8()))); break; // SHORT_BINSTRING
        case 0x42: this.push(new Uint8Array(this.take(this.u32()))); break; // BINBYTES
        case 0x43: this.push(new Uint8Array(this.take(this.u8()))); break; // SHORT_BINBYTES
        case 0x8e: this.push(new Uint8Array(this.take(this.u64()))); break; // BINBYTES8
        case 0x96: this.push(new Uint8Array(this.take(this.u64()))); break; // BYTEARRAY8

        // Globals and object construction, all through the allowlist.
        case 0x63: { // GLOBAL "module\nname\n"
          const module = this.line();
          this.push(this.resolveGlobal(module, this.line()));
          break;
        }
        case 0x93: { // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') this.fail('STACK_GLOBAL needs two strings');
          this.push(this.resolveGlobal(module, name));
          break;
        }
        case 0x69: { // INST "module\nname\n", arguments since MARK
          const module = this.line();
          const callable = this.resolveGlobal(module, this.line());
          this.push(this.call(callable, this.popMark()));
          break;
        }
        case 0x6f: { // OBJ: MARK callable args...
          const items = this.popMark();
          if (items.length === 0) this.fail('OBJ without a class');
          this.push(this.call(items[0], items.slice(1)));
          break;
        }
        case 0x52: // REDUCE: callable(*args)
        case 0x81: { // NEWOBJ: cls.__new__(cls, *args); the factory builds either way
          const args = this.pop();
          this.push(this.call(this.pop(), args));
          break;
        }
        case 0x92: { // NEWOBJ_EX
          const kwargs = this.pop();
          const args = this.pop();
          const cls = this.pop();
          if (!(kwargs instanceof Map) || kwargs.size !== 0) this.fail('keyword arguments are not supported');
          this.push(this.call(cls, args));
          break;
        }
        case 0x62: { // BUILD: record the state, never apply it
          const state = this.pop();
          const target = this.top();
          if (typeof target !== 'object' || target === null) this.fail(`cannot BUILD ${describe(target)}`);
          buildStates.set(target, state);
          break;
        }

        // Persistent ids (torch storages).
        case 0x51: this.push(this.persistent(this.pop())); break; // BINPERSID
        case 0x50: this.push(this.persistent(this.line())); break; // PERSID

        // Memo.
        case 0x71: this.memoPut(this.u8()); break; // BINPUT
        case 0x72: this.memoPut(this.u32()); break; // LONG_BINPUT
        case 0x94: this.memoPut(this.memo.size); break; // MEMOIZE
        case 0x70: this.memoPut(Number(this.textInt(this.line()))); break; // PUT
        case 0x68: this.push(this.memoGet(this.u8())); break; // BINGET
        case 0x6a: this.push(this.memoGet(this.u32())); break; // LONG_BINGET
        case 0x67: this.push(this.memoGet(Number(this.textInt(this.line())))); break; // GET

        // Stack manipulation.
        case 0x30: { // POP (pops a MARK when the stack above it is empty, as CPython does)
          if (this.stack.length > 0) this.stack.pop();
          else this.popMark();
          break;
        }
        case 0x31: this.popMark(); break; // POP_MARK
        case 0x32: this.push(this.top()); break; // DUP

        case 0x82: case 0x83: case 0x84: // EXT1/2/4: the copyreg extension registry
          this.fail('extension-registry globals are not supported');
        case 0x97: case 0x98: // NEXT_BUFFER / READONLY_BUFFER
          this.fail('out-of-band buffers are not supported');
        default:
          this.fail('unknown opcode');
      }
    }
    this.opcodeName = 'end of input';
    this.opcodeAt = this.pos;
    return this.fail('truncated: no STOP opcode');
  }
}

/** Protocol 0 UNICODE: latin-1 text with \uXXXX and \UXXXXXXXX escapes. */
function rawUnicodeEscape(text: string): string {
  return text.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, short?: string, long?: string) =>
    String.fromCodePoint(Math.min(parseInt(short ?? long ?? '0', 16), 0x10ffff)));
}

function describe(value: unknown): string {
  if (value === null) return 'None';
  if (value instanceof PickleGlobal) return `'${value.name}'`;
  if (Array.isArray(value)) return 'a tuple/list';
  if (value instanceof Map) return 'a dict';
  if (value instanceof Uint8Array) return 'bytes';
  if (typeof value === 'object') return `a ${value.constructor?.name ?? 'object'}`;
  return `a ${typeof value}`;
}

const OPCODE_NAMES = new Map<number, string>([
  [0x80, 'PROTO'], [0x95, 'FRAME'], [0x2e, 'STOP'], [0x7d, 'EMPTY_DICT'], [0x5d, 'EMPTY_LIST'],
  [0x29, 'EMPTY_TUPLE'], [0x8f, 'EMPTY_SET'], [0x28, 'MARK'], [0x85, 'TUPLE1'], [0x86, 'TUPLE2'],
  [0x87, 'TUPLE3'], [0x74, 'TUPLE'], [0x6c, 'LIST'], [0x64, 'DICT'], [0x91, 'FROZENSET'],
  [0x73, 'SETITEM'], [0x75, 'SETITEMS'], [0x61, 'APPEND'], [0x65, 'APPENDS'], [0x90, 'ADDITEMS'],
  [0x4e, 'NONE'], [0x88, 'NEWTRUE'], [0x89, 'NEWFALSE'], [0x4a, 'BININT'], [0x4b, 'BININT1'],
  [0x4d, 'BININT2'], [0x8a, 'LONG1'], [0x8b, 'LONG4'], [0x49, 'INT'], [0x4c, 'LONG'],
  [0x47, 'BINFLOAT'], [0x46, 'FLOAT'], [0x58, 'BINUNICODE'], [0x8c, 'SHORT_BINUNICODE'],
  [0x8d, 'BINUNICODE8'], [0x56, 'UNICODE'], [0x54, 'BINSTRING'], [0x55, 'SHORT_BINSTRING'],
  [0x42, 'BINBYTES'], [0x43, 'SHORT_BINBYTES'], [0x8e, 'BINBYTES8'], [0x96, 'BYTEARRAY8'],
  [0x63, 'GLOBAL'], [0x93, 'STACK_GLOBAL'], [0x69, 'INST'], [0x6f, 'OBJ'], [0x52, 'REDUCE'],
  [0x81, 'NEWOBJ'], [0x92, 'NEWOBJ_EX'], [0x62, 'BUILD'], [0x51, 'BINPERSID'], [0x50, 'PERSID'],
  [0x71, 'BINPUT'], [0x72, 'LONG_BINPUT'], [0x94, 'MEMOIZE'], [0x70, 'PUT'], [0x68, 'BINGET'],
  [0x6a, 'LONG_BINGET'], [0x67, 'GET'], [0x30, 'POP'], [0x31, 'POP_MARK'], [0x32, 'DUP'],
  [0x82, 'EXT1'], [0x83, 'EXT2'], [0x84, 'EXT4'], [0x97, 'NEXT_BUFFER'], [0x98, 'READONLY_BUFFER'],
]);
