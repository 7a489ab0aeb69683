// Locates test fixtures from the compiled test files (dist/test/...), whatever the cwd.

import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The repository root: this file compiles to <root>/dist/test/helpers/paths.js. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export function fixturePath(...parts: string[]): string {
  return join(repoRoot, 'test', 'fixtures', ...parts);
}
