// Keeps a test file's peak memory to that of its largest case: after each test, a full garbage
// collection and a turn of the event loop, so that the models a test built (weights, and the
// packed copies that backends key by weight tensor, freed by FinalizationRegistry callbacks)
// are gone before the next test builds its own, rather than whenever V8 next decides to collect.
// (A model must also be unreachable for this to help: node's test runner keeps every subtest's
// function, so a test drops what its subtests' closures can reach when it ends.)

import { afterEach } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A full collection, then a turn of the event loop so that finalizers run, then another collection. */
export async function collectGarbage(): Promise<void> {
  gc();
  await new Promise((resolve) => setImmediate(resolve));
  gc();
}

/** Collects garbage after every test of the file that calls this. */
export function collectGarbageAfterEachTest(): void {
  afterEach(collectGarbage);
}
