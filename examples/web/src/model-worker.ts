// The model's Web Worker: the library's own worker side (serveModelWorker), which builds the
// model, loads its weights and runs forward passes off the page's thread. The page talks to it
// through ModelWorker (main.ts).

import { serveModelWorker } from 'resnet-ts';

serveModelWorker();
