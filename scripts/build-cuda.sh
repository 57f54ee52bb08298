#!/usr/bin/env bash
# build-cuda.sh: build a `candor` with `--features cuda` on a machine that has no GPU
# and no CUDA toolkit, and put it with its launcher in one folder that can be copied
# to a machine with an NVIDIA GPU.
#
#   bash scripts/build-cuda.sh            # -> dist/cuda/{candor,with-cuda-libs.sh,BUILD-INFO}
#                                         #    and dist/cuda-xz/ (the same, candor.xz)
#
# The stripped binary is about 63 MB, most of it candle's kernels for the GPU; xz brings
# it to about 10 MB for copying (benches/gpu/run.sh unpacks either folder).
#
# With a CUDA toolkit installed you don't need this: `cargo build --release --features cuda`.
#
# Steps: scripts/cuda/setup-toolchain.sh installs the CUDA 13.0 build pieces from PyPI
# wheels under $CUDA_PIP_ROOT (default ~/.cache/cuda-pip, about 1.2 GB, once) with a
# link-only libcuda stub; the build uses its own target dir (target-cuda) so CPU builds
# don't evict it. The first build spends 15-20 minutes compiling candle's kernels with
# nvcc on 2 cores; later builds reuse them.
#
# Environment: CUDA_COMPUTE_CAP (default 90: H100/H200; 80 for A100, 89 for L4/RTX 40xx,
# 86 for RTX 30xx), OUT_DIR (default dist/cuda), CARGO_TARGET_DIR (default target-cuda).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${OUT_DIR:-$ROOT/dist/cuda}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target-cuda}"
CUDA_PIP_ROOT="${CUDA_PIP_ROOT:-$HOME/.cache/cuda-pip}"
export CUDA_PIP_ROOT

log() { printf '[build-cuda] %s\n' "$*"; }

# The stub must cover every driver symbol cudarc can reference: fetch the crates first.
cargo fetch --locked
bash scripts/cuda/setup-toolchain.sh
# shellcheck disable=SC1091
source "$CUDA_PIP_ROOT/13.0/env.sh"
log "CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP, target dir $CARGO_TARGET_DIR"

start=$(date +%s)
cargo build --release --locked --features cuda --bin candor
log "built in $(( $(date +%s) - start )) s"

mkdir -p "$OUT"
cp "$CARGO_TARGET_DIR/release/candor" "$OUT/candor"
strip --strip-all "$OUT/candor"
cp scripts/cuda/with-cuda-libs.sh "$OUT/with-cuda-libs.sh"
chmod +x "$OUT/with-cuda-libs.sh"
{
  echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)')"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "features: cuda; CUDA 13.0 (PyPI wheels); CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP"
  echo "needs at run time: an NVIDIA driver for CUDA >= 13.0 and the CUDA 13 runtime libraries"
  echo "  (libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libnvrtc.so.13)"
  echo "run: ./with-cuda-libs.sh ./candor serve --device cuda ..."
} > "$OUT/BUILD-INFO"
XZ_OUT="${OUT}-xz"
mkdir -p "$XZ_OUT"
xz -T0 -6 -c "$OUT/candor" > "$XZ_OUT/candor.xz"
cp "$OUT/with-cuda-libs.sh" "$OUT/BUILD-INFO" "$XZ_OUT/"
log "$(du -h "$OUT/candor" | cut -f1) stripped binary in $OUT, $(du -h "$XZ_OUT/candor.xz" | cut -f1) compressed in $XZ_OUT"
log "on the GPU machine: $OUT/with-cuda-libs.sh $OUT/candor --help"
