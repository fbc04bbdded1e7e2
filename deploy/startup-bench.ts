// How long the built serving app takes to become ready, and to stop on SIGTERM: the numbers the
// Deployment's startupProbe budget and termination grace period rest on. Starts
// `node dist/apps/serving/main.js` (build it first: the `startup` target does) over a models
// directory several times and prints one JSON line per run, then a summary line.
import { spawn } from 'node:child_process';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { findWorkspaceRoot, parseCommandLine } from '@filmgenre/core';

const Options = z.object({
  modelsDir: z.string().default('models').describe('models directory to serve'),
  runs: z.int().positive().default(3).describe('start-ups to time'),
  posterWorkers: z.int().positive().default(2).describe('--poster-workers of the server (the Deployment gives 2, one per core of its limit)'),
});
const options = parseCommandLine(Options, 'startup-bench [options]: time the serving app from start to ready, and from SIGTERM to exit');
const root = findWorkspaceRoot();
const main = join(root, 'dist/apps/serving/main.js');

interface Run { listeningMs: number; readyMs: number; stopMs: number; exitCode: number | null }

function once(): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const server = spawn(process.execPath, [main, '--models-dir', options.modelsDir, '--port', '0', '--poster-workers', String(options.posterWorkers)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let listeningMs = NaN;
    let readyMs = NaN;
    let stopAt = NaN;
    createInterface({ input: server.stdout }).on('line', (line) => {
      let entry: { msg?: string };
      try {
        entry = JSON.parse(line) as { msg?: string };
      } catch {
        return;
      }
      if (entry.msg === 'listening') listeningMs = performance.now() - t0;
      if (entry.msg === 'ready') {
        readyMs = performance.now() - t0;
        stopAt = performance.now();
        server.kill('SIGTERM');
      }
    });
    server.on('error', reject);
    server.on('exit', (exitCode) => {
      if (Number.isNaN(readyMs)) reject(new Error(`the server exited (${exitCode}) before it was ready`));
      else resolve({ listeningMs, readyMs, stopMs: performance.now() - stopAt, exitCode });
    });
  });
}

const round = (ms: number) => Math.round(ms);
const runs: Run[] = [];
for (let i = 0; i < options.runs; i++) {
  const run = await once();
  runs.push(run);
  console.log(JSON.stringify({ run: i + 1, listeningMs: round(run.listeningMs), readyMs: round(run.readyMs), stopMs: round(run.stopMs), exitCode: run.exitCode }));
}
const sorted = (key: keyof Run) => runs.map((r) => r[key] as number).sort((a, b) => a - b);
console.log(JSON.stringify({
  summary: 'serving start-up', modelsDir: options.modelsDir, runs: runs.length, posterWorkers: options.posterWorkers,
  readyMs: { min: round(sorted('readyMs')[0]!), max: round(sorted('readyMs').at(-1)!) },
  stopMs: { min: round(sorted('stopMs')[0]!), max: round(sorted('stopMs').at(-1)!) },
  cpus: availableParallelism(), cpuModel: cpus()[0]?.model, loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
}));
