// npm run fuzz [-- options]: seeded mutants of the committed format fixtures through every reader
// (torch zip and legacy, safetensors, npy, images), each in a child process under a time and a
// memory limit; prints counts per reader and outcome, writes findings to --out, exits 1 if any.
//
//   --count N         inputs (default 100000)          --seed S        campaign seed (default 1)
//   --first I         first input index (default 0)    --workers N     child processes (default: cores)
//   --time-limit MS   per input (default 2000)         --memory-limit MiB  per input (default 256)
//   --out DIR         findings (default fuzz-findings) --index I       write input I to --out and describe it
//   --replay FILE...  run these files (reader by extension, .bin: --reader)   --reader NAME

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { runCampaign, type CampaignReport } from './campaign.js';
import { loadCorpus, makeMutant, READER_NAMES, readerOfFile, type ReaderName } from './mutants.js';

const integer = (text: string): number => {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`not a non-negative integer: ${text}`);
  return value;
};

function table(report: CampaignReport): string {
  const columns = ['ok', 'typed', 'untyped', 'crash', 'hang', 'memory'] as const;
  const rows = [['reader', 'inputs', ...columns]];
  for (const [reader, counts] of Object.entries(report.byReader)) {
    const total = columns.reduce((sum, c) => sum + counts[c], 0);
    if (total > 0) rows.push([reader, String(total), ...columns.map((c) => String(counts[c]))]);
  }
  const widths = rows[0].map((_, k) => Math.max(...rows.map((row) => row[k].length)));
  return rows.map((row) => row.map((cell, k) => (k === 0 ? cell.padEnd(widths[k]) : cell.padStart(widths[k]))).join('  ')).join('\n');
}

const program = new Command('fuzz')
  .description('Fuzz the weight-file and image readers with seeded mutants of the committed fixtures.')
  .option('--count <n>', 'inputs', integer, 100_000)
  .option('--seed <s>', 'campaign seed', integer, 1)
  .option('--first <i>', 'first input index', integer, 0)
  .option('--workers <n>', 'child processes', integer)
  .option('--time-limit <ms>', 'per-input time limit', integer, 2000)
  .option('--memory-limit <MiB>', 'per-input growth of peak memory', integer, 256)
  .option('--out <dir>', 'where findings are written', 'fuzz-findings')
  .option('--index <i>', 'write input <i> of the campaign to --out and describe it, run nothing', integer)
  .option('--replay <files...>', 'run these files instead of mutants')
  .addOption(new Option('--reader <name>', 'reader for replayed files without a known extension').choices(READER_NAMES))
  .action(async (opts: {
    count: number; seed: number; first: number; workers?: number; timeLimit: number; memoryLimit: number;
    out: string; index?: number; replay?: string[]; reader?: ReaderName;
  }) => {
    if (opts.index !== undefined) {
      const mutant = makeMutant(loadCorpus(), opts.seed, opts.index);
      mkdirSync(opts.out, { recursive: true });
      const path = join(opts.out, `${mutant.reader}-s${opts.seed}-i${opts.index}.bin`);
      writeFileSync(path, mutant.bytes);
      console.log(JSON.stringify({ path, reader: mutant.reader, source: mutant.source, steps: mutant.steps }));
      return;
    }
    const files = opts.replay?.map((path) => {
      const reader = readerOfFile(path) ?? opts.reader;
      if (reader === undefined) throw new Error(`${path}: no reader for its extension; pass --reader`);
      return { path, reader };
    });
    const what = files ? `${files.length} files` : `${opts.count} inputs, seed ${opts.seed}`;
    console.error(`fuzz: ${what}, time limit ${opts.timeLimit} ms, memory limit ${opts.memoryLimit} MiB per input`);
    const report = await runCampaign({
      seed: opts.seed, count: opts.count, first: opts.first, files, workers: opts.workers,
      timeLimitMs: opts.timeLimit, memoryLimitMiB: opts.memoryLimit, outDir: opts.out,
      progress: (r) => {
        const rate = r.done / Math.max(r.seconds, 1e-3);
        console.error(`fuzz: ${r.done}/${r.inputs} inputs, ${r.findings.length} findings, ${rate.toFixed(0)}/s, ${r.seconds.toFixed(0)} s`);
      },
    });
    console.log(table(report));
    console.log(`${report.done} inputs in ${report.seconds.toFixed(1)} s; slowest ${report.slowestMs.toFixed(0)} ms (${report.slowest ?? '-'}); ` +
      `largest peak-memory growth ${report.largestGrowthMiB.toFixed(0)} MiB`);
    for (const f of report.findings) {
      console.log(`${f.kind} ${f.reader} ${f.path ?? `seed ${f.seed} index ${f.index}`}: ${f.detail}${f.saved ? ` → ${f.saved}` : ''}`);
    }
    console.log(`${report.findings.length} findings (untyped errors, crashes, hangs, memory)`);
    process.exitCode = report.findings.length > 0 ? 1 : 0;
  });

// Ctrl-C or a kill: exit through 'exit', where the campaign kills its children.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
await program.parseAsync();
