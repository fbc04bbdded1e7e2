// Faults of a training run, as a user meets them: the trainer runs as a separate process, is
// signalled or killed mid-epoch, and is resumed. Small (200 films, a BiLSTM) so CI can afford it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CSV_FILE, findWorkspaceRoot, IMAGES_DIR, resolveDatasetDir } from '@filmgenre/core';
import { stopBoundMs } from '@filmgenre/training/testing';

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
  return trainer(['train', '--model', 'lstm', '--limit', '200', '--epochs', '3', '--batch-size', '8', '--seed', '3',
    '--out', out, '--report-dir', join(out, 'report'), '--backend', 'wasm', ...extra]);
}

/** The trainer CLI as its own process: node with tsx's loader directly (not npx), so signals reach the trainer itself. */
function trainer(args: string[], command: string[] = [process.execPath, '--import', 'tsx', cli]): Run {
  const child = spawn(command[0]!, [...command.slice(1), ...args], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
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

/** Sends SIGTERM once `pattern` is seen (after `delay` ms), then SIGINT if still running 1.1 s after the stop line; returns the exit. */
async function stopDuring(run: Run, pattern: RegExp, delay = 0) {
  await run.waitFor(pattern);
  await new Promise((r) => setTimeout(r, delay));
  const sent = Date.now();
  run.child.kill('SIGTERM');
  // A second signal, a second after the first was taken, exits at once.
  void run.waitFor(/SIGTERM: stopping/).then(() => setTimeout(() => run.child.kill('SIGINT'), 1100), () => {});
  const exit = await run.exited;
  return { ...exit, ms: exit.at - sent };
}

/** A copy of the first `rows` films of the dataset (posters linked, not copied) with `change` applied to each CSV row's fields. */
function datasetCopy(name: string, rows: number, change: (fields: string[], header: string[], row: number) => void): string {
  const source = resolveDatasetDir();
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  symlinkSync(join(source, IMAGES_DIR), join(dir, IMAGES_DIR));
  const lines = readFileSync(join(source, CSV_FILE), 'utf8').split('\n');
  const header = lines[0]!.split(',');
  // Only the 25 genre columns and the overview are touched; the overview is the last field, quoted or not.
  const changed = lines.slice(1, rows + 1).map((line, row) => {
    const fields = line.match(/^([^,]*),("[^"]*"|[^,]*),((?:[^,]*,){25})(.*)$/)!;
    const parts = [fields[1]!, fields[2]!, ...fields[3]!.slice(0, -1).split(','), fields[4]!];
    change(parts, header, row);
    return parts.join(',');
  });
  writeFileSync(join(dir, CSV_FILE), `${[lines[0], ...changed].join('\n')}\n`);
  return dir;
}

describe('hostile clients and careless operators (issue 21): the trainer, in a separate process', () => {
  it('SIGTERM in the first second is answered with a line and exit 130, not a silent 143', async () => {
    // Before node has started running the trainer's first module nothing can catch a signal; so the
    // signal goes as soon after that as node and tsx take to start a script that does nothing, here
    // and now (about 0.4 s on an idle machine: the trainer's handlers came only after 2–3 s of imports).
    const script = join(work, 'nothing.ts');
    writeFileSync(script, 'console.error("up");\n');
    let boot = 0;
    for (let i = 0; i < 2; i++) {
      const started = Date.now();
      const nothing = trainer([], [process.execPath, '--import', 'tsx', script]);
      await nothing.waitFor(/up/);
      boot = Math.max(boot, Date.now() - started);
      await nothing.exited;
    }
    const out = join(work, 'first-second');
    const run = train(out);
    await new Promise((r) => setTimeout(r, 1.5 * boot + 100));
    run.child.kill('SIGTERM');
    const { code } = await run.exited;
    expect(code, run.stderr()).toBe(130);
    expect(run.stderr()).toMatch(/SIGTERM: stopping/);
    expect(run.stderr()).toMatch(/\[trainer\] stopped while starting: nothing was done/);
    expect(existsSync(join(out, 'lstm'))).toBe(false);
  }, 60_000);

  const cache = join(work, 'phase-cache');
  const phases = join(work, 'phases');
  it('stops while computing poster features', async () => {
    const run = trainer(['train', '--limit', '300', '--out', phases, '--report-dir', join(phases, '..', 'phase-report'), '--cache-dir', cache]);
    const { code, ms } = await stopDuring(run, /\[cnn\] features/, 1000);
    expect(code, run.stderr()).toBe(130);
    expect(ms, run.stderr()).toBeLessThan(stopBoundMs());
    expect(run.stderr()).toMatch(/stopped in cnn: nothing was published for it/);
    expect(existsSync(join(phases, 'cnn'))).toBe(false);
  }, 300_000);

  it('stops while training the heads', async () => {
    const run = trainer(['train', '--limit', '300', '--out', phases, '--report-dir', join(phases, '..', 'phase-report'), '--cache-dir', cache]);
    const { code, ms } = await stopDuring(run, /\[cnn\] poster features \d+\/\d+ \(100%\)/);
    expect(code, run.stderr()).toBe(130);
    expect(ms, run.stderr()).toBeLessThan(stopBoundMs());
    expect(run.stderr()).not.toMatch(/\[cnn\] saved/);
    expect(existsSync(join(phases, 'cnn'))).toBe(false);
  }, 300_000);

  it('stops while embedding overviews (it went on for 36 s), and a second signal exits at once', async () => {
    const run = trainer(['train', '--model', 'sentence', '--limit', '1000', '--out', phases, '--report-dir', join(phases, '..', 'phase-report'), '--cache-dir', cache]);
    const { code, ms } = await stopDuring(run, /\[sentence\] embedding 1000 overviews/, 1000);
    expect(code, run.stderr()).toBe(130);
    expect(ms, run.stderr()).toBeLessThan(stopBoundMs());
    expect(run.stderr()).toMatch(/stopped in sentence: nothing was published for it/);
    expect(existsSync(join(phases, 'sentence'))).toBe(false);
  }, 300_000);

  it('stops while writing the run report, even while its posters are being read from a stalled disk: every model is published, no report is written', async () => {
    // The report reads a dozen posters; here they are named pipes that answer only when the test
    // lets them (a stalled disk), so the stop has to be decided while the reads hang.
    const stalled = datasetCopy('stalled-posters', 200, () => {});
    rmSync(join(stalled, IMAGES_DIR));
    mkdirSync(join(stalled, IMAGES_DIR));
    const posters = readFileSync(join(stalled, CSV_FILE), 'utf8').split('\n').slice(1).filter(Boolean).map((line) => join(stalled, IMAGES_DIR, `${line.split(',')[0]}.jpg`));
    expect(spawnSync('mkfifo', posters).status).toBe(0);
    const out = join(work, 'report-phase');
    const report = join(work, 'report-phase-report');
    const run = trainer(['train', '--model', 'lstm', '--limit', '200', '--epochs', '1', '--data', stalled, '--out', out, '--report-dir', report]);
    await run.waitFor(/\[report\] writing/);
    await new Promise((r) => setTimeout(r, 500));
    const sent = Date.now();
    run.child.kill('SIGTERM');
    await run.waitFor(/\[report\] stopped/);
    const decided = Date.now() - sent;
    // The disk answers at last (an end of file to every pending read): only then can the process exit.
    const answer = setInterval(() => {
      for (const path of posters) {
        try {
          closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
        } catch {
          // ENXIO: nobody is reading this one
        }
      }
    }, 100);
    const { code } = await run.exited;
    clearInterval(answer);
    expect(code, run.stderr()).toBe(130);
    expect(decided, run.stderr()).toBeLessThan(stopBoundMs());
    expect(run.stderr()).toMatch(/\[report\] stopped: no report was written \(every model of the run was published: .*lstm\)/);
    expect(existsSync(join(out, 'lstm', 'metadata.json'))).toBe(true);
    expect(existsSync(join(report, 'report.html'))).toBe(false);
  }, 300_000);

  it('stops `evaluate` while it embeds overviews, writing nothing (it died silently with 143)', async () => {
    const models = join(work, 'evaluated');
    const trained = trainer(['train', '--model', 'sentence', '--limit', '200', '--epochs', '1', '--out', models, '--report-dir', join(work, 'evaluated-report'), '--cache-dir', cache]);
    expect((await trained.exited).code, trained.stderr()).toBe(0);
    const output = join(work, 'evaluation.json');
    const run = trainer(['evaluate', '--models', models, '--limit', '1500', '--output', output, '--cache-dir', join(work, 'evaluate-cache')]);
    const { code, ms } = await stopDuring(run, /\[data\]/, 3000);
    expect(code, run.stderr()).toBe(130);
    expect(ms, run.stderr()).toBeLessThan(stopBoundMs());
    expect(run.stderr()).toMatch(/\[evaluate\] stopped: nothing was written/);
    expect(existsSync(output)).toBe(false);
  }, 300_000);

  it('--resume refuses a checkpoint trained on other labels or overviews, by name', async () => {
    const out = join(work, 'other-data');
    const interrupted = train(out);
    await interrupted.waitFor(/\[lstm\] epoch 1: loss/);
    interrupted.child.kill('SIGTERM');
    expect((await interrupted.exited).code, interrupted.stderr()).toBe(130);
    const swapped = datasetCopy('drama-comedy-swapped', 200, (fields, header) => {
      const [drama, comedy] = [header.indexOf('Drama'), header.indexOf('Comedy')];
      [fields[drama], fields[comedy]] = [fields[comedy]!, fields[drama]!];
    });
    const relabelled = train(out, ['--resume', '--data', swapped]);
    expect((await relabelled.exited).code, relabelled.stderr()).toBe(1);
    expect(relabelled.stderr()).toMatch(/--resume: the checkpoint in .* belongs to another training \(different labels\)/);
    const edited = datasetCopy('one-overview-edited', 200, (fields, _header, row) => {
      if (row === 17) fields[fields.length - 1] = `"${fields.at(-1)!.replace(/^"|"$/g, '')} And then it rains."`;
    });
    const reworded = train(out, ['--resume', '--data', edited]);
    expect((await reworded.exited).code, reworded.stderr()).toBe(1);
    expect(reworded.stderr()).toMatch(/belongs to another training \(different overviews\)/);
    expect(existsSync(join(out, 'lstm'))).toBe(false);
    // The same data resumes.
    const resumed = train(out, ['--resume', '--epochs', '1']);
    expect((await resumed.exited).code, resumed.stderr()).toBe(0);
    expect(resumed.stderr()).toMatch(/\[lstm\] resuming after epoch 1/);
  }, 600_000);
});

/**
 * How to get a mount namespace of our own, where a tmpfs can be mounted and vanishes with the
 * trainer: with a user namespace too (unshare -rm: an unprivileged user, where the kernel allows it),
 * or without one as root (unshare -m: a chroot or a container run as root may refuse user namespaces
 * yet allow mounts). Neither: the tests are skipped, with the reason below.
 */
const unshareArgs = [['-rm'], ['-m']].find((args) => spawnSync('unshare', [...args, 'sh', '-c', `mount -t tmpfs none '${tmpdir()}'`], { stdio: 'ignore' }).status === 0);
if (!unshareArgs) console.warn('faults.e2e: skipping the read-only and full --out tests: neither `unshare -rm` nor `unshare -m` may mount a tmpfs here');

// A read-only or full file system needs a mount, in a mount namespace of its own: root passes every
// permission check, so a directory's mode cannot make it unwritable.
describe.runIf(unshareArgs)('an --out that cannot be written (issue 21), in a namespace of its own', () => {
  /** The trainer in a mount namespace where `dir` is a 64 KiB tmpfs, remounted read-only if asked. */
  function onTmpfs(dir: string, readOnly: boolean) {
    mkdirSync(dir, { recursive: true });
    const mount = `mount -t tmpfs -o size=64k none '${dir}'${readOnly ? ` && mount -o remount,ro '${dir}'` : ''}`;
    return trainer(['train', '--model', 'lstm', '--limit', '200', '--epochs', '1', '--out', join(dir, 'models'), '--report-dir', join(work, 'tmpfs-report')],
      ['unshare', ...unshareArgs!, 'sh', '-c', `${mount} && exec "$0" "$@"`, process.execPath, '--import', 'tsx', cli]);
  }

  it.each([['read-only', true, /EROFS|read-only/], ['full', false, /ENOSPC|no space left/]] as const)('a %s --out is refused before any work, naming the path and the cause', async (_what, readOnly, cause) => {
    const dir = join(work, `tmpfs-${readOnly ? 'ro' : 'full'}`);
    const run = onTmpfs(dir, readOnly);
    const { code } = await run.exited;
    expect(code, run.stderr()).toBe(1);
    expect(run.stderr()).toMatch(new RegExp(`error: --out ${join(dir, 'models')}: cannot write in ${dir} \\(.*\\)`));
    expect(run.stderr()).toMatch(cause);
    // Refused before the backend, the dataset or any epoch.
    expect(run.stderr()).not.toMatch(/\[tfjs\]|\[data\]|\[lstm\]/);
  }, 120_000);
});
