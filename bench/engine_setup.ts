// What the timed workers (engines.ts) and the cold-start processes (cold_start.ts) must agree
// on, in a module that imports nothing: a cold start loads only what a user's script would.

/** Our engine on one backend is named 'resnet-ts/<backend>'. */
export const OURS_PREFIX = 'resnet-ts/';

/** onnxruntime-node's session options in every row: the CPU execution provider, `threads` intra-op threads, sequential. */
export function onnxruntimeNodeOptions(threads: number) {
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  } as const;
}
