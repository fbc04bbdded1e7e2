import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';

/**
 * Signals closer together than this are one request: `npx nx …` delivers a Ctrl-C or SIGTERM to
 * the job more than once (Nx signals the whole process tree and tsx relays it to its child), and
 * that must not count as the second, "exit at once" signal.
 */
const SAME_REQUEST_MS = 1000;
/** A few /proc reads each time: cheap enough to notice a killed launcher within a batch or two. */
const LAUNCHER_POLL_MS = 250;

export interface AbortOnSignalsOptions {
  /** Also stop when a launcher this process runs under exits (default true; Linux only). */
  watchLaunchers?: boolean;
}

/**
 * An AbortController tripped by the first SIGINT / SIGTERM, so a long job stops after the current
 * batch and keeps its checkpoint; a second signal (a second or more later) exits at once with 130.
 * It also trips when a launcher this process runs under (npx, nx, tsx and the shells between them)
 * exits: `kill <pid of npx>` kills npm's process and its shell but leaves Nx running the job, which
 * would otherwise finish and publish a model nobody is waiting for. Install it before any slow
 * start-up work, so a signal is never ignored.
 */
export function abortOnSignals(log: (line: string) => void, what = 'stopping after the current batch', options: AbortOnSignalsOptions = {}): AbortController {
  const controller = new AbortController();
  let firstAt = 0;
  const stop = (reason: string) => {
    if (controller.signal.aborted) return;
    firstAt = Date.now();
    log(`\n${reason}: ${what} (send SIGINT or SIGTERM again to exit at once)`);
    controller.abort(new Error(`stopped: ${reason}`));
  };
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      if (Date.now() - firstAt < SAME_REQUEST_MS) return;
      log(`\n${name} again: exiting now`);
      process.exit(130);
    }
    stop(name);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  if (options.watchLaunchers ?? true) {
    const launchers = launcherChain();
    if (launchers.length > 0) {
      const timer = setInterval(() => {
        const gone = launchers.find((p) => startTimeOf(p.pid) !== p.startTime);
        if (!gone) return;
        clearInterval(timer);
        stop(`the launcher of this run exited (pid ${gone.pid}: ${gone.command})`);
      }, LAUNCHER_POLL_MS);
      timer.unref();
    }
  }
  return controller;
}

interface Launcher {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: tells a live process from a new one that reused its pid. */
  startTime: string;
  command: string;
}

const LAUNCHER_BINARIES = /^(npm|npx|nx|tsx|pnpm|yarn)(\.c?js)?$/;

/** Whether a command line is one of the tools that start a job here: `npm exec …`, nx, tsx, or `sh -c`. */
export function isLauncher(argv: readonly string[]): boolean {
  const [first = '', second = ''] = argv;
  if (/^(npm|npx) /.test(first)) return true; // npm sets its process title, e.g. "npm exec nx train …"
  if (/(^|\/)(ba|da)?sh$/.test(first) && second === '-c') return true;
  return LAUNCHER_BINARIES.test(basename(first)) || (/(^|\/)node$/.test(first) && LAUNCHER_BINARIES.test(basename(second)));
}

function statOf(pid: number): { ppid: number; startTime: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), startTime: fields[19]! };
  } catch {
    return undefined;
  }
}

function startTimeOf(pid: number): string | undefined {
  return statOf(pid)?.startTime;
}

/** The ancestors that are launchers, nearest first, up to the first that is not one. Empty off Linux. */
function launcherChain(): Launcher[] {
  if (!existsSync('/proc/self/stat')) return [];
  const chain: Launcher[] = [];
  let pid = process.ppid;
  while (pid > 1 && chain.length < 10) {
    const stat = statOf(pid);
    if (!stat) break;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      break;
    }
    if (!isLauncher(argv)) break;
    chain.push({ pid, startTime: stat.startTime, command: argv.join(' ').slice(0, 80) });
    pid = stat.ppid;
  }
  return chain;
}
