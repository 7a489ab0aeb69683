// The demo page's Vite config. `resnet-ts` is the package at the repository root, built there
// (`npm run build` → dist/) and imported by name: the alias points at the package's browser
// entry (what its `exports` give a browser build; the package's own `imports` then resolve
// '#platform' to the browser's platform layer). The page is served cross-origin
// isolated (COOP/COEP, in the dev server and in `vite preview`): the wasm backend's threads
// share one WebAssembly memory, which browsers allow only then.

import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The headers that make a page cross-origin isolated (self.crossOriginIsolated). */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  root,
  // Relative asset URLs: the built page works from any folder a server puts it in.
  base: './',
  resolve: { alias: [{ find: /^resnet-ts$/, replacement: `${repoRoot}dist/src/web.js` }] },
  worker: { format: 'es' },
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true },
  server: { headers: ISOLATION_HEADERS, fs: { allow: [repoRoot] } },
  preview: { headers: ISOLATION_HEADERS },
});
