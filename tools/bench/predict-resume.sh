#!/bin/bash
# Scores a catalogue, stops it with SIGTERM once CHUNKS chunks are kept, reruns the same command and
# compares the result with an uninterrupted run's output: prints the stop latency, what was kept and
# resumed, and whether the bytes are identical.
# Usage: tools/bench/predict-resume.sh MODELS_DIR UNINTERRUPTED.jsonl [CHUNKS] [predict options…]
set -u
MODELS=$1 REFERENCE=$2 CHUNKS=${3:-15}
shift $(( $# < 3 ? $# : 3 ))
OUT=$(mktemp -d)/resumed.jsonl
CMD=(node --import tsx apps/trainer/src/main.ts predict --models "$MODELS" --output "$OUT" "$@")
cd "$(dirname "$0")/../.."
uptime
"${CMD[@]}" 2> "$OUT.first.err" & PID=$!
while [ "$(ls "$OUT.partial" 2>/dev/null | grep -c chunk-)" -lt "$CHUNKS" ]; do
  kill -0 $PID 2>/dev/null || { echo "predict ended before $CHUNKS chunks were kept"; exit 1; }
  sleep 0.2
done
T0=$(date +%s%N); kill -TERM $PID; wait $PID; RC=$?; T1=$(date +%s%N)
echo "stopped: exit $RC, $(( (T1 - T0) / 1000000 )) ms from SIGTERM to exit, $(ls "$OUT.partial" | grep -c chunk-) chunks kept"
/usr/bin/time -f "resumed: %e s wall, %U s user" "${CMD[@]}" 2> "$OUT.second.err"
grep -E "resumed|wrote" "$OUT.second.err"
cmp "$OUT" "$REFERENCE" && echo "identical to $REFERENCE"
uptime
