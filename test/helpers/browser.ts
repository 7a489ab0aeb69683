// What the browser tests share: Debian's Chromium driven by playwright-core (never a browser of
// playwright's own download), a local HTTP server for the files a page needs, with or without
// the headers that make a page cross-origin isolated, and esbuild to bundle a page's script.

import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined when they can (for test's `skip`). */
export function browserSkipReason(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`;
}

/**
 * Flags for a headless Chromium on a machine without a network: no sandbox (CI runs as root),
 * no GPU, and none of the background connections (updates, sync, QUIC probes) it would try.
 */
const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

export interface BrowserSession {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Chromium with a fresh profile (its own --user-data-dir, removed on close). */
export async function launchChromium(): Promise<BrowserSession> {
  const profile = mkdtempSync(join(tmpdir(), 'resnet-ts-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.json': 'application/json', '.wasm': 'application/wasm', '.png': 'image/png', '.jpg': 'image/jpeg',
  '.svg': 'image/svg+xml', '.map': 'application/json',
};

export interface TestServer {
  /** http://127.0.0.1:port (a secure context, as localhost is). */
  base: string;
  /** Paths requested so far, in order. */
  requests: string[];
  close(): Promise<void>;
}

/**
 * Serves `root` (and `extra` files by path) on 127.0.0.1; `isolated` adds the COOP/COEP headers
 * that make a page cross-origin isolated (self.crossOriginIsolated, SharedArrayBuffer).
 */
export async function serve(root: string, options: { isolated: boolean; extra?: Record<string, string> }): Promise<TestServer> {
  const requests: string[] = [];
  const server: Server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname);
    requests.push(path);
    const file = options.extra?.[path] ?? join(root, normalize(path === '/' ? '/index.html' : path));
    if (!file.startsWith(root) && !options.extra?.[path]) return void response.writeHead(403).end();
    if (!existsSync(file) || !statSync(file).isFile()) return void response.writeHead(404).end();
    const headers: Record<string, string> = { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' };
    if (options.isolated) {
      headers['cross-origin-opener-policy'] = 'same-origin';
      headers['cross-origin-embedder-policy'] = 'require-corp';
    }
    response.writeHead(200, headers).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Bundles each entry (compiled .js) for a browser with esbuild's defaults, into `outdir`, as <name>.js. */
export async function bundle(entries: Record<string, string>, outdir: string): Promise<void> {
  await build({ entryPoints: entries, bundle: true, format: 'esm', platform: 'browser', outdir, logLevel: 'error', sourcemap: false });
}

/** A page at `url` whose console messages are kept, and whose uncaught errors fail the test. */
export async function openPage(session: BrowserSession, url: string): Promise<{ page: Page; console: { type: string; text: string }[]; errors: string[] }> {
  const page = await session.context.newPage();
  const consoleMessages: { type: string; text: string }[] = [];
  const errors: string[] = [];
  page.on('console', (message) => consoleMessages.push({ type: message.type(), text: message.text() }));
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url);
  await page.waitForFunction(() => (globalThis as { pageReady?: boolean }).pageReady === true);
  return { page, console: consoleMessages, errors };
}

/** An empty temporary directory, and its removal. */
export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
