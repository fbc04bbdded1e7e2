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

/** Environment variable naming the clang executable (default: the newest of clang, clang-16 … clang-19 on PATH). */
export const CLANG_ENV = 'FILMGENRE_CLANG';

/**
 * The two builds of the module: `simd128` runs wherever WebAssembly SIMD does; `relaxed` adds
 * relaxed SIMD's fused multiply-add to the GEMM micro-kernel (≈ 1.4× its throughput here) and
 * needs clang ≥ 16 (older clang emits the proposal's pre-standard opcodes) and a runtime that
 * accepts relaxed SIMD (Node ≥ 22, or Node 20 with the V8 flag the runtime sets).
 */
export const SIMD_VARIANTS = ['simd128', 'relaxed'] as const;
export type SimdVariant = (typeof SIMD_VARIANTS)[number];
const VARIANT_FLAGS: Record<SimdVariant, string[]> = {
  simd128: [],
  relaxed: ['-mrelaxed-simd', '-DFILMGENRE_RELAXED_SIMD=1'],
};
const RELAXED_MIN_CLANG = 16;

// Shared memory (one module instance per thread on one memory), 128-bit SIMD, no libc.
const COMPILE_FLAGS = ['--target=wasm32', '-O3', '-msimd128', '-matomics', '-mbulk-memory', '-nostdlib', '-Wall', '-Wextra'];
// 4 GiB, wasm32's limit and tfjs-backend-wasm's: the module can then also run on tfjs's own
// memory (an imported memory's maximum must not exceed the import's).
const MAX_MEMORY_BYTES = 2 ** 32;
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
  variant: SimdVariant;
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

function moduleName(variant: SimdVariant, sources: string[]): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify([COMPILE_FLAGS, VARIANT_FLAGS[variant], LINK_FLAGS]));
  for (const file of sources) hash.update(file.slice(file.lastIndexOf('/'))).update(readFileSync(file));
  return `filmgenre-kernels-${variant}-${hash.digest('hex').slice(0, 16)}.wasm`;
}

/** Where builds go: `build/` in the package, else the temp dir when the package is read-only. */
function outputDirs(): string[] {
  return [join(packageDir(), 'build'), join(os.tmpdir(), 'filmgenre-wasm-kernels')];
}

/** Path of an up-to-date build of `variant`, or undefined. Does not compile. */
export function findNativeModule(variant: SimdVariant = 'simd128'): string | undefined {
  const name = moduleName(variant, nativeSources());
  return outputDirs().map((d) => join(d, name)).find((p) => existsSync(p));
}

interface Clang {
  command: string;
  major: number;
}

let clangFound: Clang | null | undefined;

/** $FILMGENRE_CLANG, else the newest clang on PATH; null when there is none. */
export function findClang(): Clang | null {
  if (clangFound !== undefined) return clangFound;
  const candidates = process.env[CLANG_ENV] ? [process.env[CLANG_ENV]!] : ['clang', 'clang-19', 'clang-18', 'clang-17', 'clang-16'];
  clangFound = null;
  for (const command of candidates) {
    const run = spawnSync(command, ['--version'], { encoding: 'utf8' });
    if (run.error || run.status !== 0) continue;
    const major = Number(/clang version (\d+)/.exec(run.stdout)?.[1] ?? 0);
    if (!clangFound || major > clangFound.major) clangFound = { command, major };
  }
  return clangFound;
}

/**
 * Returns an up-to-date build of `variant`, compiling it when needed (≈ 1–3 s). Throws
 * NativeBuildError with the reason when the toolchain is missing, too old, or the compile fails.
 */
export function buildNativeModule(options: { force?: boolean; variant?: SimdVariant } = {}): NativeBuild {
  const variant = options.variant ?? 'simd128';
  const sources = nativeSources();
  const name = moduleName(variant, sources);
  if (!options.force) {
    const existing = findNativeModule(variant);
    if (existing) return { path: existing, variant, compiled: false };
  }
  const clang = findClang();
  if (!clang) throw new NativeBuildError('clang not found (install clang and lld, e.g. apt-get install -y clang lld)');
  if (variant === 'relaxed' && clang.major < RELAXED_MIN_CLANG) {
    throw new NativeBuildError(`the relaxed-SIMD build needs clang ≥ ${RELAXED_MIN_CLANG}, found ${clang.command} ${clang.major} (apt-get install -y clang-16 lld-16)`);
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
    const args = [...COMPILE_FLAGS, ...VARIANT_FLAGS[variant], ...LINK_FLAGS, ...sources.filter((s) => !s.endsWith('.h')), '-o', partial];
    const run = spawnSync(clang.command, args, { encoding: 'utf8' });
    if (run.error || run.status !== 0) {
      rmSync(partial, { force: true });
      lastError = (run.error?.message ?? run.stderr ?? '').trim();
      if (/wasm-ld|unable to execute|No such file/i.test(lastError)) {
        throw new NativeBuildError(`${clang.command} cannot link wasm32 (is lld installed? apt-get install -y lld): ${firstLine(lastError)}`);
      }
      if (!/Permission denied|Read-only/i.test(lastError)) throw new NativeBuildError(`compile failed: ${lastError}`);
      continue;
    }
    renameSync(partial, out); // atomic: concurrent processes never load a half-written module
    removeStaleBuilds(dir, name);
    return { path: out, variant, compiled: true };
  }
  throw new NativeBuildError(`no writable output directory: ${firstLine(lastError)}`);
}

function removeStaleBuilds(dir: string, keep: string): void {
  const variant = keep.split('-')[2];
  for (const f of readdirSync(dir)) {
    // Only older builds of the same variant (and builds from before variants existed).
    if (f === keep || !(f.startsWith(`filmgenre-kernels-${variant}-`) || /^filmgenre-kernels-[0-9a-f]+\.wasm$/.test(f))) continue;
    const path = join(dir, f);
    // Another checkout may still use an older build for an hour; remove only old ones.
    if (Date.now() - statSync(path).mtimeMs > 3_600_000) rmSync(path, { force: true });
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
