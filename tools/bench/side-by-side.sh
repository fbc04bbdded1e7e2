#!/usr/bin/env bash
# Training speed of the reference models, this project (wasm backend + native kernels) and PyTorch
# side by side in one run, on 1 and 2 threads, with the machine's CPU and load recorded around
# every measurement. One JSON line per measurement on stdout; progress on stderr.
#
#   tools/bench/side-by-side.sh [--steps 5] [--rounds 1] [--models cnn-ref,lstm-ref] [--torch-blas DIR]
#
# --torch-blas DIR runs PyTorch a second time with LD_LIBRARY_PATH=DIR, e.g. the directory of an
# unpacked libopenblas0-pthread (Debian's python3-torch otherwise links the reference BLAS, see
# docs/benchmarks/training-speed.md). Needs /usr/bin/python3 with torch and ../shared/bench.
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=5 rounds=1 models=cnn-ref,lstm-ref torch_blas=""
while (($#)); do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --torch-blas) torch_blas=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
torch=../shared/bench/torch_reference.py
[[ -f $torch ]] || torch=/work/shared/bench/torch_reference.py
json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "{\"machine\": $(json_str "$(lscpu | sed -n 's/^Model name: *//p')"), \"cpus\": $(nproc), \"flags\": $(json_str "$(lscpu | sed -n 's/^Flags: *//p')"), \"node\": \"$(node --version)\", \"date\": \"$(date -u +%FT%TZ)\"}"
npx nx run wasm-kernels:build-wasm --outputStyle=static >&2
for ((round = 1; round <= rounds; round++)); do
  for threads in 1 2; do
    echo "[side-by-side] round $round, $threads thread(s)" >&2
    echo "{\"round\": $round, \"threads\": $threads, \"load\": \"$(load)\", \"next\": \"pytorch\"}"
    /usr/bin/python3 "$torch" --threads "$threads" --steps "$steps" | grep -E "\"(${models//,/|})\"" | sed 's/^{/{"blas": "installed", /'
    if [[ -n $torch_blas ]]; then
      echo "{\"round\": $round, \"threads\": $threads, \"load\": \"$(load)\", \"next\": \"pytorch with $torch_blas\"}"
      LD_LIBRARY_PATH=$torch_blas /usr/bin/python3 "$torch" --threads "$threads" --steps "$steps" | grep -E "\"(${models//,/|})\"" | sed "s|^{|{\"blas\": \"$torch_blas\", |"
    fi
    for model in ${models//,/ }; do
      echo "{\"round\": $round, \"threads\": $threads, \"load\": \"$(load)\", \"next\": \"wasm $model\"}"
      npx tsx apps/trainer/src/bench/main.ts --backend wasm --model "$model" --steps "$steps" --threads "$threads" 2>/dev/null | grep '^{'
    done
  done
done
echo "{\"load\": \"$(load)\", \"end\": true}"
