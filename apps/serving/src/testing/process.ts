// The real entry point (src/main.ts) as a child process, for the tests that need a process: signals,
// exit codes, and timings where the client must not share the server's event loop.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'main.ts');

export interface Proc {
  child: ChildProcess;
  stdout: string[];
  stderr: () => string;
  exited: Promise<number | null>;
  /** Resolves with the first JSON log line whose msg matches. */
  waitFor(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** Children still running: killed when this process exits, so a test that times out leaves no server behind. */
const running = new Set<ChildProcess>();
process.once('exit', () => running.forEach((c) => c.kill('SIGKILL')));

export function start(args: string[]): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SERVING_LOG_LEVEL: 'info' },
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const stdout: string[] = [];
  let stderr = '';
  let buffered = '';
  const waiters: { msg: string; resolve: (v: Record<string, unknown>) => void }[] = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      stdout.push(line);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      for (const w of waiters.filter((w) => w.msg === parsed['msg'])) w.resolve(parsed);
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // 'close', not 'exit': only then has all of the child's output been read.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    child,
    stdout,
    stderr: () => stderr,
    exited,
    waitFor(msg, timeoutMs = 60_000) {
      const seen = stdout.map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return undefined; } }).find((p) => p?.['msg'] === msg);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no '${msg}' log line within ${timeoutMs} ms; stderr: ${stderr}; stdout: ${stdout.join('\n')}`)), timeoutMs);
        waiters.push({ msg, resolve: (v) => { clearTimeout(timer); resolve(v); } });
        void exited.then((code) => reject(new Error(`exited with ${code} before '${msg}'; stderr: ${stderr}`)));
      });
    },
  };
}


/** Runs `fn` against the real server on `modelsDir` in its own process (wasm), then kills it. */
export async function withServer<T>(modelsDir: string, args: string[], fn: (url: string, proc: Proc) => Promise<T>): Promise<T> {
  const proc = start(['--models-dir', modelsDir, '--port', '0', '--backend', 'wasm', ...args]);
  try {
    const ready = await proc.waitFor('ready');
    return await fn(ready['url'] as string, proc);
  } finally {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
}
