import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';

/**
 * Builds the project's own WebAssembly module from `csrc/` with clang's wasm32 target and lld
 * (Debian: `apt-get install clang lld`). The output name carries a hash of the sources and flags,
 * so an edited source is rebuilt on next use and a stale module is never loaded.
 */

/** Environment variable naming the clang executable (default `clang` on PATH). */
export const CLANG_ENV = 'FILMGENRE_CLANG';

// Shared memory (one module instance per thread on one memory), 128-bit SIMD, no libc.
const COMPILE_FLAGS = ['--target=wasm32', '-O3', '-msimd128', '-matomics', '-mbulk-memory', '-nostdlib', '-Wall', '-Wextra'];
const MAX_MEMORY_BYTES = 2 ** 31;
const STACK_BYTES = 128 * 1024;
const LINK_FLAGS = [
  '-Wl,--no-entry',
  '-Wl,--import-memory',
  '-Wl,--shared-memory',
  `-Wl,--max-memory=${MAX_MEMORY_BYTES}`,
  '-Wl,--stack-first',
  `-Wl,-z,stack-size=${STACK_BYTES}`,
  '-Wl,--export=__heap_base',
  '-Wl,--export=set_stack_pointer',
];

export interface NativeBuild {
  /** Path of the built module. */
  path: string;
  /** Whether this call compiled it (false: an up-to-date build existed). */
  compiled: boolean;
}

export class NativeBuildError extends Error {}

function packageDir(): string {
  // Resolved through the package name, so bundled copies of this code find the sources too.
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('@filmgenre/wasm-kernels/package.json'));
}

/** The C and assembly sources, sorted. */
export function nativeSources(): string[] {
  const dir = join(packageDir(), 'csrc');
  return readdirSync(dir)
    .filter((f) => /\.(c|h|S)$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}

function sourceHash(sources: string[]): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify([COMPILE_FLAGS, LINK_FLAGS]));
  for (const file of sources) hash.update(file.slice(file.lastIndexOf('/'))).update(readFileSync(file));
  return hash.digest('hex').slice(0, 16);
}

/** Where builds go: `build/` in the package, else the temp dir when the package is read-only. */
function outputDirs(): string[] {
  return [join(packageDir(), 'build'), join(os.tmpdir(), 'filmgenre-wasm-kernels')];
}

/** Path of an up-to-date build, or undefined. Does not compile. */
export function findNativeModule(): string | undefined {
  const name = `filmgenre-kernels-${sourceHash(nativeSources())}.wasm`;
  return outputDirs().map((d) => join(d, name)).find((p) => existsSync(p));
}

/**
 * Returns an up-to-date module, compiling it when needed (≈ 1–3 s). Throws NativeBuildError with
 * the reason when the toolchain is missing or the compile fails.
 */
export function buildNativeModule(options: { force?: boolean } = {}): NativeBuild {
  const sources = nativeSources();
  const name = `filmgenre-kernels-${sourceHash(sources)}.wasm`;
  if (!options.force) {
    const existing = findNativeModule();
    if (existing) return { path: existing, compiled: false };
  }
  const clang = process.env[CLANG_ENV] || 'clang';
  const version = spawnSync(clang, ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    throw new NativeBuildError(`${clang} not found (install clang and lld, e.g. apt-get install -y clang lld)`);
  }
  let lastError = '';
  for (const dir of outputDirs()) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch {
      continue;
    }
    const out = join(dir, name);
    const partial = `${out}.${process.pid}.tmp`;
    const run = spawnSync(clang, [...COMPILE_FLAGS, ...LINK_FLAGS, ...sources.filter((s) => !s.endsWith('.h')), '-o', partial], {
      encoding: 'utf8',
    });
    if (run.error || run.status !== 0) {
      rmSync(partial, { force: true });
      lastError = (run.error?.message ?? run.stderr ?? '').trim();
      if (/wasm-ld|unable to execute|No such file/i.test(lastError)) {
        throw new NativeBuildError(`clang cannot link wasm32 (is lld installed? apt-get install -y lld): ${firstLine(lastError)}`);
      }
      if (!/Permission denied|Read-only/i.test(lastError)) throw new NativeBuildError(`compile failed: ${lastError}`);
      continue;
    }
    renameSync(partial, out); // atomic: concurrent processes never load a half-written module
    removeStaleBuilds(dir, name);
    return { path: out, compiled: true };
  }
  throw new NativeBuildError(`no writable output directory: ${firstLine(lastError)}`);
}

function removeStaleBuilds(dir: string, keep: string): void {
  for (const f of readdirSync(dir)) {
    if (f === keep || !/^filmgenre-kernels-[0-9a-f]+\.wasm$/.test(f)) continue;
    const path = join(dir, f);
    // Another checkout may still use an older build for an hour; remove only old ones.
    if (Date.now() - statSync(path).mtimeMs > 3_600_000) rmSync(path, { force: true });
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
