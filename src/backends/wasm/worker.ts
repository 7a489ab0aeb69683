// A worker thread of the wasm backend, written against a Web Worker's global scope (Node runs it
// in a worker_threads Worker that provides the same postMessage/onmessage: platform/node-thread.ts).
// On 'start' it instantiates the kernels on the shared memory with its own stack, says 'ready',
// and from then on runs slices of published jobs until the pool stops (threads.ts).

import { instantiate } from './kernels.js';
import { workerLoop, type FromWorker, type ToWorker } from './threads.js';

interface WorkerScope {
  postMessage(message: FromWorker): void;
  onmessage: ((event: { data: ToWorker }) => void) | null;
}

function onMessage(scope: WorkerScope, message: ToWorker): void {
  switch (message.type) {
    case 'start': {
      let kernels;
      try {
        kernels = instantiate(message.module, message.memory, message.stackTop);
      } catch (error) {
        scope.postMessage({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
        return;
      }
      scope.postMessage({ type: 'ready' });
      workerLoop(message.memory, message.control, kernels, message.index);
      break;
    }
  }
}

const scope = globalThis as unknown as WorkerScope;
scope.onmessage = (event) => onMessage(scope, event.data);
