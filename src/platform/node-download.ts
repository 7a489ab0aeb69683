// Downloads weight files as torch.hub's load_state_dict_from_url does: into a cache directory,
// checked against the SHA-256 prefix in the file name, with progress on stderr. Beyond torch.hub:
// a broken transfer resumes from `<file>.partial` with an HTTP Range request, network errors and
// 5xx responses are retried with backoff, and only a verified file is ever renamed to its final
// name. Node only: platform/node.ts reaches it through a dynamic import.

import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { DownloadError } from '../core/errors.js';
import { readResponseBody } from './response-body.js';

/** resnet-ts's cache root: $RESNET_TS_HOME, else $XDG_CACHE_HOME/resnet-ts, else ~/.cache/resnet-ts. */
export function resnetHome(): string {
  const env = process.env;
  return env.RESNET_TS_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'resnet-ts');
}

/** Where downloaded weight files are kept: `<resnetHome()>/checkpoints`. */
export function checkpointDir(): string {
  return join(resnetHome(), 'checkpoints');
}

export interface DownloadOptions {
  /** Progress on stderr (a bar on a terminal, a few lines otherwise; default true), or a callback instead. */
  progress?: boolean | ((loaded: number, total: number | undefined) => void);
  /** First hex digits the file's SHA-256 must start with; undefined or '' checks nothing. */
  sha256Prefix?: string;
  /** Failed attempts in a row, none of which received data, before giving up. Default 5. */
  retries?: number;
  /** Wait before the first retry; it doubles with each failure in a row, up to 30 s. Default 1000. */
  retryDelayMs?: number;
}

export interface CacheOptions extends DownloadOptions {
  /** Default: checkpointDir(). */
  modelDir?: string;
  /** Name in the cache. */
  fileName: string;
}

/** The file under its final name in the cache, downloading it first if it is not there yet. */
export async function downloadToCache(url: string, options: CacheOptions): Promise<string> {
  const { fileName, sha256Prefix } = options;
  if (basename(fileName) !== fileName || fileName === '.' || fileName === '..') {
    throw new RangeError(`file name '${fileName}' must not contain a directory`);
  }
  const dir = options.modelDir ?? checkpointDir();
  const cached = join(dir, fileName);
  if (await isFile(cached)) return cached; // only verified files are ever given this name
  await mkdir(dir, { recursive: true });
  if ((options.progress ?? true) === true) process.stderr.write(`Downloading: "${url}" to ${cached}\n`);
  await downloadUrlToFile(url, cached, { ...options, sha256Prefix });
  return cached;
}

/** What has been received so far: the bytes in `<dst>.partial` and their running hash. */
interface Received {
  hash: Hash;
  size: number;
  /** Whether some of the bytes were left by an earlier run. */
  fromEarlierRun: boolean;
}

function startOver(received: Received): void {
  received.hash = createHash('sha256');
  received.size = 0;
  received.fromEarlierRun = false;
}

/**
 * Downloads `url` to `dst`. Data goes to `<dst>.partial`, which a later call resumes; after the
 * SHA-256 check passes it is renamed to `dst` (atomic, same directory), so `dst` never holds a
 * partial or corrupt file. A hash mismatch deletes the download.
 */
export async function downloadUrlToFile(url: string, dst: string, options: DownloadOptions = {}): Promise<void> {
  const partial = `${dst}.partial`;
  const expected = options.sha256Prefix ?? '';
  const retries = options.retries ?? 5;
  const retryDelayMs = options.retryDelayMs ?? 1000;
  const progress = await createProgress(options.progress ?? true, basename(dst));
  try {
    const received = await hashPartial(partial);
    for (;;) {
      let failures = 0;
      for (;;) {
        const before = received.size;
        try {
          await fetchInto(url, partial, received, progress);
          break;
        } catch (error) {
          if (!(error instanceof DownloadError) || !error.retryable) throw error;
          failures = received.size > before ? 1 : failures + 1; // data received: a new run of failures
          if (failures > retries) {
            if (failures === 1) throw error;
            throw new DownloadError(`${error.message} (${failures} failed attempts in a row)`, true, { cause: error, status: error.status });
          }
          const delay = Math.min(30_000, retryDelayMs * 2 ** (failures - 1)) * (0.75 + Math.random() / 2);
          progress.message(`${error.message}; retrying in ${(delay / 1000).toFixed(1)} s`);
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
      const digest = received.hash.digest('hex');
      if (digest.startsWith(expected)) break;
      await rm(partial, { force: true });
      // Bytes left by an earlier run may belong to an older file at the same URL: start once
      // more from nothing before giving up.
      if (!received.fromEarlierRun) {
        throw new DownloadError(`invalid hash value for ${url} (expected "${expected}", got "${digest}"); the download was deleted`, false);
      }
      progress.message(`invalid hash value after resuming an earlier download; downloading ${url} again`);
      startOver(received);
    }
    await rename(partial, dst);
  } finally {
    progress.stop();
  }
}

/** One request: appends what the server sends to `partial`, resuming at `received.size`. */
async function fetchInto(url: string, partial: string, received: Received, progress: Progress): Promise<void> {
  const headers: Record<string, string> = received.size > 0 ? { Range: `bytes=${received.size}-` } : {};
  let response: Response;
  try {
    response = await fetch(url, { headers });
  } catch (error) {
    throw new DownloadError(`cannot download ${url}: ${networkReason(error)}`, isTransient(error), { cause: error });
  }
  const restart = async (): Promise<void> => {
    await response.body?.cancel();
    startOver(received);
    return fetchInto(url, partial, received, progress); // no Range header now, so this recurses once
  };

  if (response.status === 416 && received.size > 0) {
    // Nothing left to send: the partial file is complete, or it is longer than the file.
    if (parseContentRange(response.headers.get('content-range'))?.total === received.size) {
      await response.body?.cancel();
      return;
    }
    return restart();
  }
  if (!response.ok) {
    await response.body?.cancel();
    const { status } = response;
    const retryable = status >= 500 || status === 429 || status === 408;
    throw new DownloadError(`cannot download ${url}: HTTP ${status} ${response.statusText}`.trimEnd(), retryable, { status });
  }

  let total: number | undefined;
  let append = false;
  if (response.status === 206) {
    const range = parseContentRange(response.headers.get('content-range'));
    if (range?.start !== received.size) return restart();
    total = range.total;
    append = true;
  } else {
    // The whole file, also from a server that ignores Range: start again from byte 0.
    const length = response.headers.get('content-length');
    total = length !== null && /^\d+$/.test(length) ? Number(length) : undefined;
    startOver(received);
  }

  progress.start(received.size, total);
  const file = await open(partial, append ? 'a' : 'w');
  try {
    const onChunk = async (chunk: Uint8Array): Promise<void> => {
      await file.write(chunk);
      received.hash.update(chunk);
      received.size += chunk.length;
      progress.update(received.size);
    };
    await readResponseBody(url, response, onChunk, () => received.size, networkReason);
  } finally {
    await file.close();
  }
  if (total !== undefined && received.size !== total) {
    throw new DownloadError(`download of ${url} ended after ${received.size} of ${total} bytes`, true);
  }
}

/** The hash and size of what an earlier run left in `partial` (nothing if there is no file). */
async function hashPartial(partial: string): Promise<Received> {
  const received: Received = { hash: createHash('sha256'), size: 0, fromEarlierRun: false };
  if (!(await isFile(partial))) return received;
  for await (const chunk of createReadStream(partial)) {
    received.hash.update(chunk as Buffer);
    received.size += (chunk as Buffer).length;
  }
  received.fromEarlierRun = received.size > 0;
  return received;
}

/** "bytes 100-199/1000" → { start: 100, total: 1000 }; total undefined for "/*". */
function parseContentRange(header: string | null): { start: number; total: number | undefined } | undefined {
  const match = header ? /^bytes (?:(\d+)-\d+|\*)\/(\d+|\*)$/.exec(header.trim()) : null;
  if (!match) return undefined;
  return { start: match[1] === undefined ? NaN : Number(match[1]), total: match[2] === '*' ? undefined : Number(match[2]) };
}

/** fetch reports network failures as TypeError('fetch failed' | 'terminated') with the reason in `cause`. */
function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const message = cause?.message || (error as Error).message;
  return cause?.code && !message.includes(cause.code) ? `${message} (${cause.code})` : message;
}

/**
 * Whether a failed fetch is worth retrying: a network error with a system or socket code
 * (ECONNRESET, ECONNREFUSED, ETIMEDOUT, EAI_AGAIN, UND_ERR_SOCKET…), but not an unknown host or a
 * URL fetch refuses (those have no code), which would fail the same way again.
 */
function isTransient(error: unknown): boolean {
  const code = (error as { cause?: { code?: unknown } }).cause?.code;
  return typeof code === 'string' && code !== 'ENOTFOUND';
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

interface Progress {
  start(done: number, total: number | undefined): void;
  update(done: number): void;
  message(text: string): void;
  stop(): void;
}

const MiB = 1024 * 1024;

/** A cli-progress bar on a terminal; otherwise a line at each quarter of the file. */
async function createProgress(enabled: DownloadOptions['progress'], label: string): Promise<Progress> {
  const stderr = process.stderr;
  if (!enabled) return { start() {}, update() {}, message() {}, stop() {} };
  if (typeof enabled === 'function') {
    let total: number | undefined;
    return {
      start(done, size) {
        total = size;
        enabled(done, total);
      },
      update: (done) => enabled(done, total),
      message() {},
      stop() {},
    };
  }
  if (!stderr.isTTY) {
    let total: number | undefined;
    let quarter = 0;
    return {
      start(done, size) {
        total = size;
        quarter = total ? Math.floor((4 * done) / total) : 0;
      },
      update(done) {
        if (!total || Math.floor((4 * done) / total) <= quarter) return;
        quarter = Math.floor((4 * done) / total);
        stderr.write(`${label}: ${25 * quarter}% (${(done / MiB).toFixed(1)} of ${(total / MiB).toFixed(1)} MiB)\n`);
      },
      message: (text) => stderr.write(`${text}\n`),
      stop() {},
    };
  }
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    {
      stream: stderr,
      format: `${label} {bar} {percentage}% | {doneMiB}/{totalMiB} MiB | {speed} MiB/s | ETA {eta_formatted}`,
      hideCursor: true,
      barsize: 30,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let firstByte = 0;
  let startTime = 0;
  const payload = (done: number) => ({
    doneMiB: (done / MiB).toFixed(1),
    speed: ((done - firstByte) / MiB / Math.max(1e-3, (performance.now() - startTime) / 1000)).toFixed(1),
  });
  return {
    start(done, total) {
      firstByte = done;
      startTime = performance.now();
      const size = total ?? 0;
      if (!started) bar.start(size, done, { ...payload(done), totalMiB: total ? (total / MiB).toFixed(1) : '?' });
      else {
        bar.setTotal(size);
        bar.update(done, payload(done));
      }
      started = true;
    },
    update: (done) => bar.update(done, payload(done)),
    message: (text) => stderr.write(`\n${text}\n`),
    stop() {
      if (started) bar.stop();
    },
  };
}
