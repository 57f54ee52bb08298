#!/usr/bin/env bash
# run.sh: everything the GPU check does, in one call, on a machine with an NVIDIA GPU:
# correctness of the CUDA build against transformers and the CPU, then speed on a random
# DeepSeek-R1-Distill-Qwen-1.5B-shaped bf16 model; one table at the end (see gpu_check.py).
#
#   bash scripts/build-cuda.sh                  # here: dist/cuda/ and dist/cuda-xz/
#   bash benches/gpu/run.sh [DIST_DIR] [gpu_check.py options]   # there
#
# DIST_DIR (default dist/cuda, else dist/cuda-xz) holds candor, or candor.xz which is
# unpacked under $TMPDIR first, with with-cuda-libs.sh beside it.
#
# Needs on the GPU machine: the NVIDIA driver (R580+, CUDA 13.0), the CUDA 13 runtime
# libraries (a toolkit under /usr/local/cuda or the nvidia-*-cu13 pip wheels), python3 with
# numpy. No Rust, no internet. Every step has its own timeout; the whole run is meant to
# fit in about 8 minutes on an H200 (the random 3.55 GB model is written once, under
# $TMPDIR/candor-gpu-check).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DIST="${1:-}"
shift || true
if [[ -z "$DIST" ]]; then
  DIST="$ROOT/dist/cuda"
  [[ -e "$DIST/candor" ]] || DIST="$ROOT/dist/cuda-xz"
fi
if [[ ! -e "$DIST/candor" && -f "$DIST/candor.xz" ]]; then
  unpacked="${TMPDIR:-/tmp}/candor-dist"
  mkdir -p "$unpacked"
  if command -v xz >/dev/null; then
    xz -dc "$DIST/candor.xz" > "$unpacked/candor"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
      "$DIST/candor.xz" "$unpacked/candor"
  fi
  chmod +x "$unpacked/candor"
  cp "$DIST/with-cuda-libs.sh" "$DIST/BUILD-INFO" "$unpacked/" 2>/dev/null
  chmod +x "$unpacked/with-cuda-libs.sh"
  DIST="$unpacked"
fi
[[ -x "$DIST/candor" ]] || { echo "no candor in $DIST: run scripts/build-cuda.sh first and carry dist/cuda-xz" >&2; exit 2; }

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total,memory.used --format=csv,noheader 2>&1 | sed 's/^/gpu: /'
nproc | sed 's/^/cpu cores: /'
[[ -f "$DIST/BUILD-INFO" ]] && sed 's/^/build: /' "$DIST/BUILD-INFO"
RUN_SH_DRY=1 "$DIST/with-cuda-libs.sh" "$DIST/candor" 2>&1 | grep -E "cuda-libs|not found" | head -12

echo "== candor --version on cuda"
timeout 60 "$DIST/with-cuda-libs.sh" "$DIST/candor" --version

echo "== checks"
PY="${PYTHON:-python3}"
timeout "${GPU_CHECK_TIMEOUT:-540}" "$PY" "$HERE/gpu_check.py" --bin "$DIST/candor" \
    --launcher "$DIST/with-cuda-libs.sh" --device cuda "$@"
rc=$?
[[ $rc == 124 ]] && echo "gpu_check.py ran past ${GPU_CHECK_TIMEOUT:-540} s" >&2
exit $rc
