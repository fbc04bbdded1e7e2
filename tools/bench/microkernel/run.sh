#!/bin/sh
# Peak of 128-bit wasm SIMD GEMM register tiles on this CPU (JSON lines), plain SIMD and relaxed
# SIMD's fused multiply-add. Needs clang and lld (as the native module does).
#   tools/bench/microkernel/run.sh
# Debian's clang 14 emits relaxed madd with its pre-standard opcode (0xfd 0xaf 0x01); Node 20's V8
# (behind --experimental-wasm-relaxed-simd) decodes the standard one (0xfd 0x85 0x02), patched in.
set -e
cd "$(dirname "$0")"
out=$(mktemp -d)
flags="--target=wasm32 -O3 -msimd128 -nostdlib -Wl,--no-entry -Wl,--import-memory"
clang $flags tiles.c -o "$out/plain.wasm"
clang $flags -mrelaxed-simd -DRELAXED tiles.c -o "$out/relaxed-clang14.wasm"
node -e 'const fs=require("fs");const b=fs.readFileSync(process.argv[1]);for(let i=0;i+2<b.length;i++)if(b[i]==0xfd&&b[i+1]==0xaf&&b[i+2]==1){b[i+1]=0x85;b[i+2]=2}fs.writeFileSync(process.argv[2],b)' "$out/relaxed-clang14.wasm" "$out/relaxed.wasm"
echo "{\"machine\": \"$(lscpu | sed -n 's/^Model name: *//p')\", \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
node run.mjs "$out/plain.wasm"
node --experimental-wasm-relaxed-simd run.mjs "$out/relaxed.wasm"
rm -rf "$out"
