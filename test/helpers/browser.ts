// A real browser for tests and the benchmark: Debian's Chromium driven by playwright-core
// (which never downloads a browser of its own), headless, on a fresh profile, and a static
// file server on 127.0.0.1 that makes its pages cross-origin isolated (COOP/COEP) or not.

import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import type { BrowserContext } from 'playwright-core';

/** The browser the tests drive: $CHROMIUM, else Debian's package. */
export const CHROMIUM_PATH = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Why no browser test can run here, or null when one can. */
export function chromiumMissing(): string | null {
  if (!existsSync(CHROMIUM_PATH)) return `no Chromium at ${CHROMIUM_PATH} (Debian's chromium package; .ci/run installs it; $CHROMIUM names another)`;
  return null;
}

/** Flags for a quiet, offline, throwaway headless Chromium. */
const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Chromium, headless, on a fresh profile (its --user-data-dir) removed again by close(). */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'resnet-ts-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, headless: true, args: FLAGS, viewport: { width: 1400, height: 1000 } });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.onnx': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
  '.pth': 'application/octet-stream',
};

export interface StaticServer {
  /** The server's origin with a trailing slash, e.g. http://127.0.0.1:40123/ */
  url: string;
  close(): Promise<void>;
}

/**
 * Serves the files under `root` (index.html for '/'), and `extra` by path ('/weights/x.safetensors'
 * → a file on disk). With `isolated`, every response carries COOP/COEP, so pages are
 * cross-origin isolated (SharedArrayBuffer, wasm threads).
 */
export async function serveStatic(root: string, options: { isolated: boolean; extra?: Record<string, string> }): Promise<StaticServer> {
  const server: Server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    let file = options.extra?.[path];
    if (!file) {
      const relative = normalize(path === '/' ? 'index.html' : path.slice(1));
      file = join(root, relative);
      if (relative.startsWith('..') || !file.startsWith(root.endsWith(sep) ? root : root + sep)) file = '';
    }
    if (!file || !existsSync(file) || !statSync(file).isFile()) {
      response.writeHead(404).end('not found');
      return;
    }
    const headers: Record<string, string> = { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' };
    if (options.isolated) {
      headers['cross-origin-opener-policy'] = 'same-origin';
      headers['cross-origin-embedder-policy'] = 'require-corp';
    }
    const body = readFileSync(file);
    headers['content-length'] = String(body.length);
    response.writeHead(200, headers).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the test server has no port');
  return {
    url: `http://127.0.0.1:${address.port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
