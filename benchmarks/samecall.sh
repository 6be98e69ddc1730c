#!/usr/bin/env bash
# One device call: our fast engine (bench_gpu.py) and the peer faster-qwen3-tts (bench_peer.py) on the same machine,
# same checkpoint. Run from the repo root on the device machine with `.whl` and `.whl-peer` carried:
#   bash benchmarks/samecall.sh [OUT_DIR] [BENCH_GPU_ARGS...]
# Two Python environments, one process each:
#   ours: the image's Python + /tmp/site (transformers 4.57.3, qwen-tts 0.1.1, ... from .whl/) on PYTHONPATH;
#   peer: the image's Python and transformers 5 + /tmp/peer-site (faster-qwen3-tts, qwen-tts-hf from .whl-peer/,
#         plus the audio wheels of .whl/ the image lacks), WITHOUT /tmp/site.
# Each step runs under `timeout` so that a slow step cannot take the others' results with it.
set -u -o pipefail
OUT=${1:-${OUT:-/tmp/out}}
shift || true
GPU_ARGS=("$@")
[ ${#GPU_ARGS[@]} -gt 0 ] || GPU_ARGS=(--batches 1,4,16 --stock sdpa --repeats 3 --parity-frames 0)
LIMIT=${LIMIT:-585}  # seconds for the whole script; the last step gets what is left
CALL=${CALL:-$(date -u +%Y%m%dT%H%M%SZ)}
CKPT=/tmp/voicebot-ckpt
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
say() { echo "[$(date +%H:%M:%S) +${SECONDS}s] $*"; }

say "call $CALL"
nvidia-smi -L
python3 -m pip list 2>/dev/null | grep -iE "^(torch|torchaudio|transformers|tokenizers|huggingface.hub|accelerate|triton|numpy) "

say "installing wheels"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { say "install into /tmp/site failed"; exit 1; }
audio=()
for name in librosa audioread pooch platformdirs soxr soundfile sox decorator cffi pycparser; do
  audio+=(.whl/"$name"-[0-9]*.whl)
done
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/peer-site \
  .whl-peer/*.whl "${audio[@]}" || { say "install into /tmp/peer-site failed"; exit 1; }

say "building the 1.7b checkpoint on the GPU"
PYTHONPATH=/tmp/site timeout 180 python3 -c "
from pathlib import Path
from backend.engine.checkpoint import build_random_checkpoint, is_checkpoint
path = Path('$CKPT/1.7b')
if not is_checkpoint(path):
    build_random_checkpoint('1.7b', path, device='cuda')
" 2>&1 | grep -v -e "SoX could not" -e "sox.sourceforge" -e "path variables" -e "have SoX" || true
[ -f $CKPT/1.7b/config.json ] || { say "no checkpoint"; exit 1; }

say "peer: faster-qwen3-tts"
PYTHONPATH=/tmp/peer-site timeout ${PEER_LIMIT:-220} python3 benchmarks/bench_peer.py --checkpoint $CKPT \
  --call "$CALL" --out "$OUT/peer.json" 2>&1 | tee "$OUT/peer.log" | grep -v -e "Loading weights" -e "^\s*$"
say "peer exit ${PIPESTATUS[0]}"

left=$((LIMIT - SECONDS))
say "ours: fast engine (+ stock), ${left}s left"
PYTHONPATH=/tmp/site timeout $left python3 benchmarks/bench_gpu.py --checkpoint $CKPT --call "$CALL" \
  --out "$OUT/ours.json" "${GPU_ARGS[@]}" 2>&1 | tee "$OUT/ours.log" | grep -e "^\[" -e Error -e error
say "ours exit ${PIPESTATUS[0]}"
