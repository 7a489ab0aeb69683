// Runs a script written for a Web Worker (src/backends/wasm/worker.ts) in a worker_threads
// Worker: its global scope gets postMessage and onmessage, carried over parentPort. Messages that
// arrive while the script is still loading wait for it.

import { parentPort, workerData } from 'node:worker_threads';

interface WebWorkerScope {
  postMessage(message: unknown): void;
  onmessage: ((event: { data: unknown }) => void) | null;
}

const port = parentPort!;
const scope = globalThis as unknown as WebWorkerScope;
const early: unknown[] = [];
scope.postMessage = (message) => port.postMessage(message);
const deliver = (data: unknown): void => {
  const handler = scope.onmessage;
  if (handler) handler({ data });
  else early.push(data);
};
port.on('message', deliver);
await import((workerData as { script: string }).script);
for (const data of early.splice(0)) deliver(data);
