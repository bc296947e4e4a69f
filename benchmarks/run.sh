#!/bin/sh
# The whole benchmark suite in one command (docs/performance.md quotes what it writes):
#   benchmarks/run.sh            # or: make bench
# Needs mosquitto (the benchmarks start their own on a free port) and, for the model sweeps, the
# workstation extra (TensorFlow) to build the models once. Takes ~25 min on 2 cores, 10 of them the soak.
# PYTHON defaults to the venv's python; results go to benchmarks/results/, scratch to out/bench/.
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-benchmarks/results}
WORK=${WORK:-out/bench}
TAG=${TAG:-$(uname -m)-$(nproc)core}
DEMO=models/demo/parts_int8.tflite
mkdir -p "$OUT" "$WORK"

# Models at 160/128/96 px and width 0.5, each as float32, float16 and int8 (built once, reused).
"$PY" benchmarks/build_models.py --out "$WORK/models"
M="$WORK/models"
VIDEO="$WORK/line-1280x720-20s/line.avi"

# 1. The whole agent vs the naive loop vs the decode/invoke ceilings, 720p, 1 and 2 interpreter threads,
#    with and without the reduced decode; a paced run for latency; start-up.
"$PY" -m agent.cli bench-pipeline --model "$DEMO" --resolution 1280x720 --threads 1,2 --rounds 3 \
    --reduce 2 --workdir "$WORK" --out "$OUT/pipeline-720p-$TAG.json"
# 2. Resolution sweep (generated MJPG line videos).
"$PY" -m agent.cli bench-pipeline --model "$DEMO" --resolution 640x480 --resolution 1920x1080 \
    --threads 2 --rounds 2 --reduce 2 --paced-fps 0 --workdir "$WORK" --out "$OUT/pipeline-resolutions-$TAG.json"
# 3. Model-size sweep through the whole agent (int8), on the 720p video.
"$PY" -m agent.cli bench-pipeline --video "$VIDEO" --model "$M/s160_int8.tflite" --model "$M/s128_int8.tflite" \
    --model "$M/s96_int8.tflite" --model "$M/s160w05_int8.tflite" --threads 2 --rounds 2 --paced-fps 0 \
    --workdir "$WORK" --out "$OUT/pipeline-models-$TAG.json"
# 4. Raw invoke ceilings: float32 / float16 / int8 per size, 1 and 2 threads (XNNPACK), and the decodes.
set --
for name in s160 s128 s96 s160w05; do
    for variant in int8 float16 float32; do set -- "$@" --model "$M/${name}_$variant.tflite"; done
done
"$PY" -m agent.cli bench "$@" --threads 1,2 --runs 300 --video "$VIDEO" --out "$OUT/invoke-decode-$TAG.json"
# 5. Soak: 10 minutes at 30 frames/s.
"$PY" -m agent.cli bench-soak --model "$DEMO" --minutes "${SOAK_MINUTES:-10}" --fps 30 --workdir "$WORK" \
    --out "$OUT/soak-10min-$TAG.json" --plot "$OUT/soak-10min-$TAG.png"
