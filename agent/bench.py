"""``inspect-agent bench``: the raw ceilings, measured side by side in one run.

    inspect-agent bench --model models/demo/parts_int8.tflite \\
        --model out/demo-model/models/parts_float32.tflite \\
        --video out/agent-demo/line/line.avi --out bench.json

- invoke: the interpreter alone (input set once, ``invoke()`` timed) per model and thread count;
- decode: reading and decoding the video file as fast as OpenCV can (the other ceiling of a camera pipeline).

The machine may be shared and noisy, so the runs alternate between variants (round robin in
blocks) and the table prints ratios against the first model, which hold better than absolute times.
For an MJPG video it also times JPEG decodes of the same frames (full, greyscale, 1/2 and 1/4 size):
what a cheaper decode would raise the decode ceiling to. The whole agent against these ceilings and the
naive loop: ``inspect-agent bench-pipeline`` (agent/bench_pipeline.py).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from agent.model import TFLiteModel
from agent.status import ExitStatus, InspectError

__all__ = [
    "DecodeResult",
    "InvokeResult",
    "decode_ceiling",
    "invoke_ceiling",
    "jpeg_decode_variants",
    "run_bench",
]

_BLOCK = 20  # invokes per turn in the round robin


@dataclass(frozen=True)
class InvokeResult:
    model: str
    input: str  # dtype[shape]
    threads: int
    runs: int
    p50_ms: float
    p90_ms: float
    per_second: float  # 1000 / mean


@dataclass(frozen=True)
class DecodeResult:
    video: str
    width: int  # of the decoded image (a reduced decode gives a smaller one)
    height: int
    frames: int
    p50_ms: float
    per_second: float
    mode: str = "capture"  # cv2.VideoCapture.read, as the agent's grabber decodes


# JPEG decodes of the same MJPG frames, what a cheaper decode would save: libjpeg-turbo scales while it
# decodes (1/2, 1/4: fewer IDCT coefficients), greyscale skips the chroma.
_JPEG_MODES = {
    "imdecode": cv2.IMREAD_COLOR,
    "imdecode-gray": cv2.IMREAD_GRAYSCALE,
    "imdecode-reduced-2": cv2.IMREAD_REDUCED_COLOR_2,
    "imdecode-reduced-4": cv2.IMREAD_REDUCED_COLOR_4,
}


def _random_input(model: TFLiteModel, rng: np.random.Generator) -> np.ndarray:
    spec = model.inputs[0]
    dtype = np.dtype(spec.dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=spec.shape, endpoint=True).astype(dtype)
    return rng.random(spec.shape, dtype=np.float32).astype(dtype)


def invoke_ceiling(models: list[Path], threads: list[int], runs: int) -> list[InvokeResult]:
    """Every (model, threads) pair timed over ``runs`` invokes, interleaved in blocks of ``_BLOCK``."""
    rng = np.random.default_rng(0)
    loaded = [(path, n, TFLiteModel(path, n)) for path in models for n in threads]
    times: list[list[float]] = [[] for _ in loaded]
    for _, _, model in loaded:  # warm-up: first invokes allocate and pack weights
        model.run(_random_input(model, rng))
    inputs = [_random_input(model, rng) for _, _, model in loaded]
    while min(len(t) for t in times) < runs:
        for k, (_, _, model) in enumerate(loaded):
            for _ in range(_BLOCK):
                started = time.perf_counter()
                model.run(inputs[k])
                times[k].append((time.perf_counter() - started) * 1000)
    results = []
    for (path, n, model), samples in zip(loaded, times, strict=True):
        ms = np.asarray(samples[:runs])
        spec = model.inputs[0]
        results.append(
            InvokeResult(
                str(path), f"{spec.dtype}{spec.shape}", n, runs,
                float(np.percentile(ms, 50)), float(np.percentile(ms, 90)), float(1000 / ms.mean()),
            )
        )  # fmt: skip
    return results


def decode_ceiling(video: Path, frames: int) -> DecodeResult:
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise InspectError(f"cannot open video {video}", ExitStatus.NO_INPUT)
    times: list[float] = []
    shape = (0, 0)
    try:
        while len(times) < frames:
            started = time.perf_counter()
            ok, image = capture.read()
            if not ok:
                if not times:
                    raise InspectError(f"no frame could be decoded from {video}", ExitStatus.DATA_ERROR)
                capture.set(cv2.CAP_PROP_POS_FRAMES, 0)  # loop: short files still give enough samples
                continue
            times.append((time.perf_counter() - started) * 1000)
            shape = image.shape[:2]
    finally:
        capture.release()
    ms = np.asarray(times)
    return DecodeResult(
        str(video), shape[1], shape[0], frames, float(np.percentile(ms, 50)), float(1000 / ms.mean())
    )


def _mjpeg_packets(video: Path, frames: int) -> list[np.ndarray]:
    """The video's compressed frames as they are stored (FFmpeg raw mode); empty unless they are JPEGs."""
    capture = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    packets: list[np.ndarray] = []
    try:
        if not capture.set(cv2.CAP_PROP_FORMAT, -1):
            return []
        while len(packets) < frames:
            ok, packet = capture.read()
            if not ok or packet is None:
                break
            packets.append(packet.reshape(-1).copy())
    finally:
        capture.release()
    if not packets or bytes(packets[0][:2]) != b"\xff\xd8":  # JPEG start-of-image: MJPG only
        return []
    return packets


def jpeg_decode_variants(video: Path, frames: int) -> list[DecodeResult]:
    """Full, greyscale and reduced-size JPEG decodes of an MJPG video's frames, interleaved in blocks."""
    packets = _mjpeg_packets(video, min(frames, 100))
    if not packets:
        return []
    times: dict[str, list[float]] = {mode: [] for mode in _JPEG_MODES}
    shapes: dict[str, tuple[int, ...]] = {}
    k = 0
    while min(len(t) for t in times.values()) < frames:
        for mode, flag in _JPEG_MODES.items():
            for i in range(_BLOCK):
                packet = packets[(k + i) % len(packets)]
                started = time.perf_counter()
                image = cv2.imdecode(packet, flag)
                times[mode].append((time.perf_counter() - started) * 1000)
                if image is None:
                    raise InspectError(
                        f"{video}: frame {(k + i) % len(packets)} is not a JPEG", ExitStatus.DATA_ERROR
                    )
                shapes[mode] = image.shape
        k += _BLOCK
    results = []
    for mode, samples in times.items():
        ms = np.asarray(samples[:frames])
        height, width = shapes[mode][:2]
        per_second = float(1000 / ms.mean())
        results.append(
            DecodeResult(str(video), width, height, frames, float(np.percentile(ms, 50)), per_second, mode)
        )
    return results


def run_bench(
    models: list[Path], threads: list[int] | None, runs: int, video: Path | None, out: Path | None
) -> int:
    threads = threads or sorted({1, 2, os.cpu_count() or 1})
    invoke = invoke_ceiling(models, threads, runs)
    decode = decode_ceiling(video, min(runs, 300)) if video else None
    variants = jpeg_decode_variants(video, min(runs, 300)) if video else []
    base = {r.threads: r for r in invoke if r.model == str(models[0])}
    print(f"{'model':<44} {'input':<22} {'thr':>3} {'p50 ms':>8} {'p90 ms':>8} {'per s':>8} {'vs first':>8}")
    for r in invoke:
        ratio = r.per_second / base[r.threads].per_second
        name = r.model if len(r.model) <= 44 else "…" + r.model[-43:]
        timing = f"{r.p50_ms:>8.2f} {r.p90_ms:>8.2f} {r.per_second:>8.0f}"
        print(f"{name:<44} {r.input:<22} {r.threads:>3} {timing} {ratio:>7.2f}x")
    if decode:
        print(
            f"decode {decode.width}x{decode.height}: p50 {decode.p50_ms:.2f} ms, "
            f"{decode.per_second:.0f} frames/s; ceiling with {Path(invoke[0].model).name} at "
            f"{invoke[0].threads} thread(s): {min(decode.per_second, invoke[0].per_second):.0f} frames/s"
        )
        for v in variants:
            print(f"  {v.mode:<19} {v.width}x{v.height}: p50 {v.p50_ms:.2f} ms, {v.per_second:.0f} frames/s")
    if out:
        payload = {
            "machine": {"cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
            "invoke": [asdict(r) for r in invoke],
            "decode": asdict(decode) if decode else None,
            "decode_variants": [asdict(v) for v in variants],
        }
        out.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {out}")
    return int(ExitStatus.OK)
