#!/usr/bin/env bash
# Reruns the fault probe behind issue 12 as a user and an attacker would: the trainer through
# `npx nx train trainer` (signals, kill -9, --resume) and the built serving app on a copy of a
# trained models directory (tampered files, a signal while loading, hostile requests). Prints one
# line per case: what was done, what happened, PASS or FAIL; exits 1 if any case failed.
#
#   tools/faults/rerun-fault-table.sh [--models-dir models] [--limit 400]
#
# The crafted tall PNG next to normal traffic and the 10,000-request soak are benchmarks of their own:
#   npx nx bench serving -- --models-dir models --stall default-bounds
#   npx nx bench serving -- --models-dir models --soak 10000
set -uo pipefail
cd "$(dirname "$0")/../.."
models=models limit=400
while (($#)); do
  case "$1" in
    --models-dir) models=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -f $models/cnn/metadata.json || -f $models/lstm/metadata.json ]] || { echo "no trained models in $models (pass --models-dir)" >&2; exit 2; }
root=$PWD
work=$(mktemp -d -p "${TMPDIR:-/tmp}" fault-table.XXXX)
children=()
trap 'for p in "${children[@]}"; do kill -9 -- "-$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
failures=0
report() { # case, observed, verdict
  printf '%-4s | %s | %s\n' "$3" "$1" "$2"
  [[ $3 == PASS ]] || failures=$((failures + 1))
}
# Waits until the file matches the pattern (or the process exits / 300 s pass).
wait_for() {
  local file=$1 pattern=$2 pid=$3
  for _ in $(seq 1 3000); do
    grep -qE "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# Waits until no process of the run writing to this output directory is left (npx may exit before the job).
wait_tree() {
  for _ in $(seq 1 600); do
    pgrep -f -- "--out $1( |$)" >/dev/null || return 0
    sleep 0.1
  done
  return 1
}
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.1f}')"; }
sha() { sha256sum "$1" | cut -c1-16; }
epoch_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['epoch'])" "$1/.checkpoints/lstm/last/state.json" 2>/dev/null || echo none; }

# --- training ------------------------------------------------------------------------------------
train_args=(--model lstm --limit "$limit" --epochs 3 --batch-size 8 --backend wasm --report-dir "$work/report")
# Starts the trainer as a user does, in its own process group (as a terminal would), in the background.
start_train() { # log, out, extra args…
  local log=$1 out=$2; shift 2
  setsid npx nx train trainer --outputStyle=stream -- "${train_args[@]}" --out "$out" "$@" >"$log" 2>&1 &
  train_pid=$!
  children+=("$train_pid")
}

# 1. SIGTERM to the npx process mid-epoch.
out=$work/sigterm
start_train "$work/sigterm.log" "$out" --seed 1
wait_for "$work/sigterm.log" '\[lstm\] epoch 1: loss' "$train_pid"
t0=$(now); kill -TERM "$train_pid"; wait "$train_pid"; code=$?; wait_tree "$out"; t1=$(now)
observed="npx exit $code, every process gone after $(secs "$t0" "$t1") s; models/lstm $([[ -e $out/lstm ]] && echo written || echo 'not written'); checkpoint epoch $(epoch_of "$out"); $(grep -c 'to continue: the same command with --resume' "$work/sigterm.log") resume hint"
[[ $code -ne 0 && ! -e $out/lstm && $(epoch_of "$out") == 1 ]] && grep -q 'to continue: the same command with --resume' "$work/sigterm.log" && v=PASS || v=FAIL
report "SIGTERM to npx nx train trainer after epoch 1" "$observed" $v

# 1b. Ctrl-C: SIGINT to the whole process group, as a terminal sends it.
out=$work/sigint
start_train "$work/sigint.log" "$out" --seed 1
wait_for "$work/sigint.log" '\[lstm\] epoch 1: loss' "$train_pid"
t0=$(now); kill -INT -- "-$train_pid"; wait "$train_pid"; code=$?; wait_tree "$out"; t1=$(now)
observed="exit $code, every process gone after $(secs "$t0" "$t1") s; models/lstm $([[ -e $out/lstm ]] && echo written || echo 'not written'); checkpoint epoch $(epoch_of "$out"); stop lines shown: $(grep -c 'stopping after the current batch' "$work/sigint.log") (Nx hides a task's output after a Ctrl-C)"
[[ $code -ne 0 && ! -e $out/lstm && $(epoch_of "$out") == 1 ]] && v=PASS || v=FAIL
report "Ctrl-C (SIGINT to the process group) after epoch 1" "$observed" $v

# 2. An earlier run finished; a new run (another seed, no --resume) is stopped before its first epoch.
out=$work/earlier
start_train "$work/earlier.log" "$out" --seed 1 --epochs 2
wait "$train_pid"
before=$(sha "$out/lstm/weights.bin"); created=$(python3 -c "import json; print(json.load(open('$out/lstm/metadata.json'))['createdAt'])")
start_train "$work/early-stop.log" "$out" --seed 2
wait_for "$work/early-stop.log" '\[data\] split' "$train_pid"
kill -TERM "$train_pid"; wait "$train_pid"; code=$?; wait_tree "$out"
after=$(sha "$out/lstm/weights.bin"); created_after=$(python3 -c "import json; print(json.load(open('$out/lstm/metadata.json'))['createdAt'])")
observed="exit $code; models/lstm weights $([[ $before == "$after" ]] && echo unchanged || echo CHANGED), createdAt $([[ $created == "$created_after" ]] && echo unchanged || echo CHANGED); old checkpoint removed: $(grep -c 'removing the checkpoint of an earlier run' "$work/early-stop.log"); checkpoint epoch now $(epoch_of "$out")"
[[ $code -ne 0 && $before == "$after" && $created == "$created_after" ]] && v=PASS || v=FAIL
report "SIGTERM before epoch 1 of a new run (--seed 2) over a finished run" "$observed" $v

# 3. --resume after that interrupted new run continues the new run (from scratch if it completed no
# epoch), never the earlier, finished one.
left=$(epoch_of "$out")
start_train "$work/resume-new.log" "$out" --seed 2 --resume
wait "$train_pid"; code=$?
said=$(grep -oE -- '--resume: no checkpoint|resuming after epoch [0-9]+' "$work/resume-new.log" | head -1)
[[ $left == none && $said == '--resume: no checkpoint' || $said == "resuming after epoch $left" ]] && resumed_right=1 || resumed_right=0
observed="new run's checkpoint: epoch $left; exit $code; said '$said'; epochs trained: $(grep -cE '\[lstm\] epoch [0-9]+: loss' "$work/resume-new.log"); seed in metadata $(python3 -c "import json; m=json.load(open('$out/lstm/metadata.json')); print(m['split']['seed'])")"
[[ $code -eq 0 && $resumed_right -eq 1 ]] && v=PASS || v=FAIL
report "--resume after the interrupted new run" "$observed" $v

# 4. kill -9 after epoch 2, --resume: same final weights as an uninterrupted run with the same seed.
start_train "$work/whole.log" "$work/whole" --seed 3
wait "$train_pid"
out=$work/killed
start_train "$work/killed.log" "$out" --seed 3
wait_for "$work/killed.log" '\[lstm\] epoch 2: loss' "$train_pid"
sleep 0.3; pkill -9 -f -- "--out $out( |$)"; wait "$train_pid" 2>/dev/null; wait_tree "$out"
done_epochs=$(epoch_of "$out")
start_train "$work/resumed.log" "$out" --seed 3 --resume
wait "$train_pid"; code=$?
diff=$(python3 - "$work/whole/lstm/weights.bin" "$out/lstm/weights.bin" <<'EOF'
import array, sys
a, b = array.array('f'), array.array('f')
a.frombytes(open(sys.argv[1], 'rb').read()); b.frombytes(open(sys.argv[2], 'rb').read())
print(f"{max(abs(x - y) for x, y in zip(a, b)):.2e}" if len(a) == len(b) else f"sizes differ {len(a)} {len(b)}")
EOF
)
observed="killed with epoch $done_epochs checkpointed; resume exit $code, '$(grep -oE '\[lstm\] resuming after epoch [0-9]+' "$work/resumed.log" | head -1)'; max |Δweight| vs uninterrupted: $diff"
[[ $code -eq 0 && $diff != sizes* ]] && python3 -c "import sys; sys.exit(0 if float('$diff') < 1e-5 else 1)" && v=PASS || v=FAIL
report "kill -9 after epoch 2, then --resume (seed 3)" "$observed" $v

# --- serving -------------------------------------------------------------------------------------
npx nx build serving --outputStyle=static >"$work/build.log" 2>&1 || { echo "serving build failed: $work/build.log" >&2; exit 1; }
server=$root/dist/apps/serving/main.js
port=$((20000 + RANDOM % 20000))
copy() { rm -rf "$work/m"; cp -r "$models" "$work/m"; }
# Starts the server on $work/m; returns once it is ready or has exited.
start_server() { # log
  node "$server" --models-dir "$work/m" --port "$port" >"$1" 2>&1 &
  server_pid=$!
  children+=("$server_pid")
  wait_for "$1" '"msg":"ready"' "$server_pid"
}
image_member=$(python3 -c 'import json, os, sys; print(next(d for d in sorted(os.listdir(sys.argv[1])) if os.path.isfile(f"{sys.argv[1]}/{d}/metadata.json") and json.load(open(f"{sys.argv[1]}/{d}/metadata.json"))["modality"] == "image"))' "$models")

# 5. cnn weights.bin replaced by same-size random bytes.
copy; f=$work/m/$image_member/weights.bin
head -c "$(stat -c %s "$f")" /dev/urandom >"$f.tmp" && mv "$f.tmp" "$f"
t0=$(now); start_server "$work/random.log"; wait "$server_pid"; code=$?; t1=$(now)
observed="exit $code after $(secs "$t0" "$t1") s: $(grep -oE 'sha256[^"]*' "$work/random.log" | head -1 | cut -c1-160)"
[[ $code -ne 0 ]] && grep -q weights.bin "$work/random.log" && v=PASS || v=FAIL
report "$image_member/weights.bin replaced by random bytes of the same size" "$observed" $v

# 6a. 64 weights set to NaN.
copy; f=$work/m/$image_member/weights.bin
python3 - "$f" <<'EOF'
import struct, sys
with open(sys.argv[1], 'r+b') as w:
    for i in range(64):
        w.seek(4 * 97 * i); w.write(struct.pack('<f', float('nan')))
EOF
start_server "$work/nan.log"; wait "$server_pid"; code=$?
observed="exit $code: $(grep -oE 'sha256[^"]*' "$work/nan.log" | head -1 | cut -c1-160)"
[[ $code -ne 0 ]] && v=PASS || v=FAIL
report "64 weights of $image_member set to NaN" "$observed" $v

# 6b. The same NaNs with the recorded hash rewritten to match, and no fusion (whose record of its
# members' digests would refuse first): the weights check must refuse them.
rm -rf "$work/m/fusion"
python3 - "$work/m/$image_member" <<'EOF'
import hashlib, json, sys
d = sys.argv[1]; meta = json.load(open(f'{d}/metadata.json'))
meta['files']['weights.bin'] = hashlib.sha256(open(f'{d}/weights.bin', 'rb').read()).hexdigest()
json.dump(meta, open(f'{d}/metadata.json', 'w'))
EOF
start_server "$work/nan-rehashed.log"; wait "$server_pid"; code=$?
observed="exit $code: $(grep -oE "weight '[^\"]*" "$work/nan-rehashed.log" | head -1 | cut -c1-160)"
[[ $code -ne 0 ]] && v=PASS || v=FAIL
report "the same NaN weights with metadata's sha256 forged to match" "$observed" $v

# 6c. A vocabulary cut to 50 entries.
copy; vocab=$(cd "$work/m" && find . -name 'vocab*.json' | head -1)
python3 - "$work/m/$vocab" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
cut = v[:50] if isinstance(v, list) else dict(list(v.items())[:50])
json.dump(cut, open(sys.argv[1], 'w'))
EOF
start_server "$work/vocab.log"; wait "$server_pid"; code=$?
observed="exit $code: $(grep -oE 'sha256[^"]*' "$work/vocab.log" | head -1 | cut -c1-160)"
[[ $code -ne 0 ]] && v=PASS || v=FAIL
report "${vocab#./} cut to 50 entries" "$observed" $v

# 7. SIGTERM while the models load.
copy
node "$server" --models-dir "$work/m" --port "$port" >"$work/loading.log" 2>&1 &
server_pid=$!; children+=("$server_pid")
wait_for "$work/loading.log" '"msg":"listening"' "$server_pid"
t0=$(now); kill -TERM "$server_pid"; wait "$server_pid"; code=$?; t1=$(now)
observed="exit $code after $(secs "$t0" "$t1") s; ready before the signal: $(grep -c '"msg":"ready"' "$work/loading.log"); last line: $(tail -1 "$work/loading.log" | grep -oE '"msg":"[^"]*"')"
[[ $code -eq 0 ]] && v=PASS || v=FAIL
report "SIGTERM while the models load" "$observed" $v

# 8-10. Hostile requests against the intact models.
start_server "$work/serve.log"
url=http://127.0.0.1:$port
answer=$(curl -s -o "$work/body" -w '%{http_code}' "$url/healthz?q=$(head -c 100000 /dev/zero | tr '\0' a)")
report "a 100 KB URL" "$answer $(head -c 200 "$work/body")" "$([[ $answer == 431 ]] && grep -q '"code"' "$work/body" && echo PASS || echo FAIL)"
answer=$(curl -s -o "$work/body" -w '%{http_code}' -F "overview=$(python3 -c "print('\u200b' * 200, end='')")" "$url/v1/predict")
report "an overview of 200 zero-width spaces" "$answer $(head -c 200 "$work/body")" "$([[ $answer == 4* ]] && grep -q EMPTY_OVERVIEW "$work/body" && echo PASS || echo FAIL)"
python3 - "$work/tall.png" <<'EOF'
import struct, sys, zlib
def chunk(kind, data): return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
w, h = 1, 25_000_000
deflate = zlib.compressobj(9); body = b''.join(deflate.compress(b'\0' * ((w * 3 + 1) * 1_000_000)) for _ in range(h // 1_000_000)) + deflate.flush()
open(sys.argv[1], 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', body) + chunk(b'IEND', b''))
EOF
answer=$(curl -s -o "$work/body" -w '%{http_code} in %{time_total} s' -F "poster=@$work/tall.png;type=image/png" "$url/v1/predict")
report "a $(($(stat -c %s "$work/tall.png") / 1024)) KB PNG declaring 1 × 25,000,000 pixels" "$answer $(head -c 160 "$work/body")" "$([[ $answer == 422* ]] && echo PASS || echo FAIL)"
kill -TERM "$server_pid"; wait "$server_pid"

echo "$failures case(s) failed"
((failures == 0))
