// Runs every tile of a module built from tiles.c, interleaved, 12 rounds; prints each tile's best
// GFLOP/s (noise on a shared host only slows a run down, so the best round is the tile's speed).
// node [--experimental-wasm-relaxed-simd] run.mjs <module.wasm>
import { readFileSync } from 'node:fs';

const memory = new WebAssembly.Memory({ initial: 256 });
const { exports } = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(process.argv[2])), { env: { memory } });
const f32 = new Float32Array(memory.buffer);
for (let i = 0; i < f32.length; i++) f32[i] = Math.random();
const KC = 256;
const REPS = 20000;
const shape = { t_loadsplat: [4, 8], t_shuffle: [4, 8], t_unroll2: [4, 8], t_5x8: [5, 8], t_2x16: [2, 16], t_relaxed_fma: [4, 8], t_relaxed_3x12: [3, 12], t_relaxed_2x16: [2, 16], t_relaxed_6x8: [6, 8] };
const tiles = Object.keys(shape).filter((k) => typeof exports[k] === 'function');
const best = Object.fromEntries(tiles.map((k) => [k, 0]));
for (let round = 0; round < 12; round++) {
  for (const k of tiles) {
    const t0 = performance.now();
    exports[k](KC, 1024, 256, 65536, 262144, 16, REPS);
    const ms = performance.now() - t0;
    best[k] = Math.max(best[k], (2 * shape[k][0] * shape[k][1] * KC * REPS) / ms / 1e6);
  }
}
for (const k of tiles) console.log(JSON.stringify({ tile: k, rows: shape[k][0], cols: shape[k][1], bestGflops: Math.round(best[k] * 10) / 10 }));
