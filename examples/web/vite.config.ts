// The demo page's Vite config. `resnet-ts` is the package built at the repository root
// (`npm run build` → dist/), imported by name (through src/resnet-ts.ts). The page is served cross-origin isolated
// (COOP/COEP, in the dev server and in `vite preview`): the wasm backend's threads share one
// WebAssembly memory, which browsers allow only then.

import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The headers that make a page cross-origin isolated (self.crossOriginIsolated). */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/**
 * The wasm backend's thread pool starts its workers from a URL held in a variable, which
 * bundlers do not follow; this rewrites it to the literal
 * `new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })` form that Vite
 * bundles. A stopgap for the package as built today: it fails the build loudly once the
 * package's own code no longer has that shape.
 */
function wasmThreadWorker(): Plugin {
  const declaration = "const workerUrl = new URL('./worker.js', import.meta.url);";
  const spawn = "new Worker(workerUrl, { type: 'module' })";
  return {
    name: 'resnet-ts-wasm-thread-worker',
    enforce: 'pre',
    transform(code, id) {
      if (!id.replaceAll('\\', '/').endsWith('/dist/src/backends/wasm/threads.js')) return null;
      if (!code.includes(declaration) || !code.includes(spawn)) {
        this.error('resnet-ts: the wasm thread pool no longer starts its workers as this plugin expects; remove the plugin');
      }
      // Only the browser's branch runs in this bundle: the URL Node's branch uses goes.
      return code
        .replace(declaration, 'const workerUrl = undefined;')
        .replace(spawn, "new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })");
    },
  };
}

export default defineConfig({
  root,
  // Relative asset URLs: the built page works from any folder a server puts it in.
  base: './',
  resolve: {
    alias: [{ find: /^resnet-ts$/, replacement: `${root}src/resnet-ts.ts` }],
  },
  plugins: [wasmThreadWorker()],
  worker: {
    format: 'es',
    plugins: () => [wasmThreadWorker()],
    // Summaries and the diagram name layers by their classes (Module.typeName is the
    // constructor's name), which minification would otherwise shorten.
    rolldownOptions: { output: { keepNames: true } },
  },
  // The package's wasm worker awaits at its top level.
  build: { target: 'esnext', outDir: 'dist', emptyOutDir: true },
  server: { headers: ISOLATION_HEADERS, fs: { allow: [repoRoot] } },
  preview: { headers: ISOLATION_HEADERS },
});
