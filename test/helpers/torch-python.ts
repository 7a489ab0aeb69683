// Runs short scripts in Debian's python3 with torch and torchvision (the versions the fixtures
// were made with), for tests that check a file or a result against PyTorch directly. Where that
// interpreter or its torch is missing, `torchPython` says why, and such tests skip.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const PYTHON = '/usr/bin/python3';

let availability: { ok: true } | { ok: false; reason: string } | undefined;

/** undefined if the tests can use torch; otherwise the reason to skip them. */
export function torchUnavailable(): string | undefined {
  if (availability === undefined) {
    if (!existsSync(PYTHON)) {
      availability = { ok: false, reason: `${PYTHON} not found` };
    } else {
      const r = spawnSync(PYTHON, ['-c', 'import torch, torchvision, numpy'], { encoding: 'utf8' });
      availability = r.status === 0 ? { ok: true } : { ok: false, reason: `${PYTHON} cannot import torch, torchvision and numpy` };
    }
  }
  return availability.ok ? undefined : availability.reason;
}

/** Runs `script` with `args` as sys.argv[1:]; throws with its stderr if it fails. */
export function runTorchPython(script: string, args: string[]): string {
  const r = spawnSync(PYTHON, ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}
