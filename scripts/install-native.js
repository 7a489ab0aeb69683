#!/usr/bin/env node
// Builds the native addon (build/Release/resnet_native.node, from binding.gyp) at `npm install`
// / `npm ci` with the node-gyp that ships with npm. Never fails the install: without a compiler
// the package still works on the wasm and reference backends, and this prints one line saying
// why the addon is missing. RESNET_SKIP_NATIVE=1 skips the build.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = join(root, 'build', 'native-build.log');

function say(line) {
  console.log(`resnet-ts: ${line}`);
}

function giveUp(reason) {
  say(`the native addon could not be built (${reason}); the wasm backend will be used instead.`);
  process.exit(0);
}

/** npm's own node-gyp: npm tells scripts where it is; otherwise look beside this node. */
function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((p) => p && existsSync(p)) ?? null;
}

/** Node's headers: npm passes its nodedir setting; a Node installed with its headers has them under its prefix. */
function findNodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : null;
}

/** The line of node-gyp's or the compiler's output that says what went wrong. */
function reasonFrom(output) {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  const pick =
    lines.find((l) => /error:/i.test(l) && !l.startsWith('gyp ERR!')) ??
    lines.find((l) => /^gyp ERR! stack Error:/.test(l)) ??
    lines.find((l) => /^gyp ERR!/.test(l)) ??
    lines.at(-1);
  return (pick ?? 'no output').replace(/^gyp ERR! (stack )?/, '').slice(0, 200);
}

if (process.env.RESNET_SKIP_NATIVE === '1') giveUp('RESNET_SKIP_NATIVE=1');
const nodeGyp = findNodeGyp();
if (!nodeGyp) giveUp("npm's node-gyp was not found");
const args = [nodeGyp, 'rebuild', '--release'];
const nodeDir = findNodeDir();
if (nodeDir) args.push(`--nodedir=${nodeDir}`);
const result = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}`;
mkdirSync(dirname(log), { recursive: true });
writeFileSync(log, output);
if (result.status !== 0) giveUp(`${reasonFrom(output)}; full log in build/native-build.log`);
say('native addon built (build/Release/resnet_native.node).');
