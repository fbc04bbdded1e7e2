import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isLauncher } from './interrupt.js';

const work = mkdtempSync(join(tmpdir(), 'interrupt-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('isLauncher', () => {
  it('knows the processes between `npx nx train trainer` and the job, and nothing else', () => {
    expect(isLauncher(['npm exec nx train trainer --limit 10'])).toBe(true);
    expect(isLauncher(['sh', '-c', 'nx', 'train', 'trainer'])).toBe(true);
    expect(isLauncher(['/bin/sh', '-c', 'tsx apps/trainer/src/main.ts train'])).toBe(true);
    expect(isLauncher(['node', '/repo/node_modules/.bin/nx', 'train', 'trainer'])).toBe(true);
    expect(isLauncher(['node', '/repo/node_modules/.bin/tsx', 'apps/trainer/src/main.ts'])).toBe(true);
    expect(isLauncher(['/usr/bin/node', '/repo/node_modules/nx/bin/nx.js', 'train'])).toBe(true);
    // A user's shell, init, a test runner: the chain stops there.
    expect(isLauncher(['-bash'])).toBe(false);
    expect(isLauncher(['bash'])).toBe(false);
    expect(isLauncher(['/sbin/init'])).toBe(false);
    expect(isLauncher(['node', '/repo/node_modules/vitest/dist/workers/forks.js'])).toBe(false);
  });
});

describe.runIf(existsSync('/proc/self/stat'))('abortOnSignals, in a separate process', () => {
  /** A job under `sh -c` (a launcher) that waits for its abort and reports how it was stopped. */
  function job() {
    const script = join(work, 'job.ts');
    writeFileSync(script, [
      `import { abortOnSignals } from ${JSON.stringify(join(import.meta.dirname, 'interrupt.ts'))};`,
      `const controller = abortOnSignals((line) => console.error(line.trim()), 'stopping');`,
      `console.error('started');`,
      `const timer = setInterval(() => {}, 100);`,
      `controller.signal.addEventListener('abort', () => { console.error('aborted'); clearInterval(timer); setTimeout(() => process.exit(130), 1500); });`,
    ].join('\n'));
    // `; true` keeps the shell alive as the job's parent instead of exec-ing node.
    const shell = spawn('sh', ['-c', `"${process.execPath}" --import tsx "${script}"; true`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    shell.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const until = (pattern: RegExp) => new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const poll = setInterval(() => {
        if (pattern.test(stderr)) {
          clearInterval(poll);
          resolve();
        } else if (Date.now() - started > 30_000) {
          clearInterval(poll);
          reject(new Error(`no ${pattern} in: ${stderr}`));
        }
      }, 50);
    });
    return { shell, stderr: () => stderr, until };
  }

  it('stops the job when its launcher exits, as when `kill <npx>` leaves Nx running the job', async () => {
    const { shell, stderr, until } = job();
    await until(/started/);
    shell.kill('SIGKILL');
    await until(/aborted/);
    expect(stderr()).toMatch(/the launcher of this run exited \(pid \d+: sh -c/);
  }, 60_000);

  it('takes two signals within a second as one request, and a later one as the second', async () => {
    const { shell, stderr, until } = job();
    await until(/started/);
    const pid = Number((await import('node:child_process')).execFileSync('pgrep', ['-P', String(shell.pid)]).toString().trim().split('\n')[0]);
    process.kill(pid, 'SIGTERM');
    process.kill(pid, 'SIGTERM'); // what Nx and tsx together deliver
    await until(/aborted/);
    expect(stderr()).not.toMatch(/again: exiting now/);
    await new Promise((r) => setTimeout(r, 1100));
    process.kill(pid, 'SIGINT');
    await until(/SIGINT again: exiting now/);
    shell.kill('SIGKILL');
  }, 60_000);
});
