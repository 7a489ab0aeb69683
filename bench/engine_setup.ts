// What the timed workers (engines.ts) and the cold-start processes (cold_start.ts) must agree
// on, in a module that imports nothing: a cold start loads only what a user's script would.

/** Our engine on one backend is named 'resnet-ts/<backend>'. */
export const OURS_PREFIX = 'resnet-ts/';

/**
 * Our engine's backend, and the ISA forced on the native one: 'resnet-ts/native@avx2' runs the
 * native backend with RESNET_NATIVE_ISA=avx2 in the worker's environment (run.ts's --native-isa,
 * which sets it there); plain 'resnet-ts/native' takes what the backend picks. null for a peer.
 */
export function parseOurs(engine: string): { backend: string; forcedIsa: string | null } | null {
  if (!engine.startsWith(OURS_PREFIX)) return null;
  const [backend, forcedIsa] = engine.slice(OURS_PREFIX.length).split('@');
  return { backend, forcedIsa: forcedIsa ?? null };
}

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
