// Faults of a training run, as a user meets them: the trainer runs as a separate process, is
// signalled or killed mid-epoch, and is resumed. Small (200 films, a BiLSTM) so CI can afford it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findWorkspaceRoot } from '@filmgenre/core';

const root = findWorkspaceRoot();
const cli = join(root, 'apps/trainer/src/main.ts');
const work = mkdtempSync(join(tmpdir(), 'trainer-faults-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Run {
  child: ChildProcess;
  stderr(): string;
  /** Resolves when stderr matches. */
  waitFor(pattern: RegExp): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

function train(out: string, extra: string[] = []): Run {
  // node with tsx's loader directly (not npx), so signals reach the trainer itself.
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'train', '--model', 'lstm', '--limit', '200', '--epochs', '3', '--batch-size', '8', '--seed', '3',
    '--out', out, '--report-dir', join(out, 'report'), '--backend', 'wasm', ...extra], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  child.stderr!.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    for (const w of [...waiters]) if (w.pattern.test(text)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  return {
    child,
    stderr: () => text,
    waitFor: (pattern) => new Promise<void>((resolve, reject) => {
      if (pattern.test(text)) return resolve();
      waiters.push({ pattern, resolve });
      void exited.then(() => reject(new Error(`exited before ${pattern}:\n${text}`)));
    }),
    exited,
  };
}

/** The last completed epoch recorded in a checkpoint. */
function checkpointEpoch(out: string): number {
  return (JSON.parse(readFileSync(join(out, '.checkpoints', 'lstm', 'last', 'state.json'), 'utf8')) as { epoch: number }).epoch;
}

describe('training faults, in a separate process', () => {
  it('SIGTERM mid-epoch stops after the current batch, keeps the last epoch checkpointed and publishes nothing', async () => {
    const out = join(work, 'sigterm');
    const run = train(out);
    // At once: an epoch of the fused BiLSTM kernel takes about a second here, so any delay could
    // let epoch 2 finish before the signal lands.
    await run.waitFor(/\[lstm\] epoch 1: loss/);
    const sent = Date.now();
    run.child.kill('SIGTERM');
    const { code, at } = await run.exited;
    expect(code, run.stderr()).toBe(130);
    expect(at - sent).toBeLessThan(15_000);
    expect(run.stderr()).toMatch(/SIGTERM: stopping after the current batch/);
    expect(run.stderr()).toMatch(/nothing was published for it.*\n.*to continue: the same command with --resume --model lstm/);
    expect(run.stderr()).not.toMatch(/\[lstm\] epoch 2: loss/);
    expect(existsSync(join(out, 'lstm'))).toBe(false);
    expect(checkpointEpoch(out)).toBe(1);
  }, 300_000);

  it('kill -9 mid-run, then --resume, ends with the weights of an uninterrupted run', async () => {
    const whole = train(join(work, 'whole'));
    expect((await whole.exited).code, whole.stderr()).toBe(0);

    const out = join(work, 'killed');
    const killed = train(out);
    await killed.waitFor(/\[lstm\] epoch 2: loss/);
    await new Promise((r) => setTimeout(r, 300));
    killed.child.kill('SIGKILL');
    expect((await killed.exited).signal).toBe('SIGKILL');
    expect(existsSync(join(out, 'lstm'))).toBe(false);
    const done = checkpointEpoch(out);
    expect(done).toBeGreaterThanOrEqual(1);

    const resumed = train(out, ['--resume']);
    expect((await resumed.exited).code, resumed.stderr()).toBe(0);
    expect(resumed.stderr()).toMatch(new RegExp(`\\[lstm\\] resuming after epoch ${done}`));
    const a = readFileSync(join(work, 'whole', 'lstm', 'weights.bin'));
    const b = readFileSync(join(out, 'lstm', 'weights.bin'));
    const wa = new Float32Array(a.buffer, a.byteOffset, a.byteLength / 4);
    const wb = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    expect(wb.length).toBe(wa.length);
    let worst = 0;
    for (let i = 0; i < wa.length; i++) worst = Math.max(worst, Math.abs(wa[i]! - wb[i]!));
    expect(worst).toBeLessThan(1e-5);
  }, 600_000);

  it('--resume refuses the checkpoint of another training', async () => {
    const out = join(work, 'killed');
    const other = train(out, ['--resume', '--learning-rate', '0.01']);
    expect((await other.exited).code).toBe(1);
    expect(other.stderr()).toMatch(/--resume: the checkpoint in .* belongs to another training \(different options\)/);
  }, 300_000);
});
