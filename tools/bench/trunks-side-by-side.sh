#!/usr/bin/env bash
# The two poster trunks on onnxruntime-node, this project's against its peer, in one run: for
# MobileNetV2 to block_10 (the cnn's) and InceptionV3 to mixed5 (the inception member's), at 256×128,
# one JSON line per (threads 1 and 2, batch 1 and 32), the machine and load first.
#   - ours: packages/model-cnn/bench/trunk-speed.ts (the compiled trunk from nsfwjs' weights, pooled)
#   - peer: the same network exported from torchvision with random weights, timed by
#     ../shared/bench/onnxruntime_trunk_reference.mjs (InceptionV3's mixed5 is torchvision's Mixed_6c)
# Needs /usr/bin/python3 with torch and torchvision (Debian's python3-torch, python3-torchvision).
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=../shared/bench
[[ -d $shared ]] || shared=/work/shared/bench
work=${ORT_REFERENCE_DIR:-/var/cache/onnxruntime-trunk-reference}
# The peer's lines gain the side and the trunk; ours name their trunk already.
tag() { sed "s/^{/{\"side\":\"$1\",${2:+\"trunk\":\"$2\",}/"; }
echo "{\"machine\": \"$(lscpu | sed -n 's/^Model name: *//p')\", \"cpus\": $(nproc), \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"date\": \"$(date -u +%FT%TZ)\"}"
# Sets up the peer's onnxruntime-node and MobileNetV2 export in $work, and times it.
bash "$shared/onnxruntime_trunk_reference.sh" | tag peer mobilenet_v2
npx tsx packages/model-cnn/bench/trunk-speed.ts --runtimes onnxruntime --rounds 3 | tag ours
if [[ ! -f $work/inception.onnx ]]; then
  /usr/bin/python3 - "$work/inception.onnx" <<'PY' 2>/dev/null
import sys, torch, torchvision
m = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=False).eval()
trunk = torch.nn.Sequential(m.Conv2d_1a_3x3, m.Conv2d_2a_3x3, m.Conv2d_2b_3x3, m.maxpool1, m.Conv2d_3b_1x1, m.Conv2d_4a_3x3, m.maxpool2,
                            m.Mixed_5b, m.Mixed_5c, m.Mixed_5d, m.Mixed_6a, m.Mixed_6b, m.Mixed_6c).eval()
torch.onnx.export(trunk, torch.rand(1, 3, 256, 128), sys.argv[1], input_names=['x'], output_names=['y'],
                  dynamic_axes={'x': {0: 'n'}, 'y': {0: 'n'}}, opset_version=13)
PY
fi
cp "$shared/onnxruntime_trunk_reference.mjs" "$work/bench.mjs"
node "$work/bench.mjs" "$work/inception.onnx" | tag peer inception_v3
npx tsx packages/model-cnn/bench/trunk-speed.ts --runtimes onnxruntime --rounds 3 --trunk inception_v3 --nodes mixed2,mixed5 --pooling mean | tag ours
