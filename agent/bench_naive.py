"""The naive baseline: the single-thread loop a user would write (read, resize, invoke, publish).

    python -m agent.bench_naive --video line.avi --model parts_int8.tflite --roi 0,50,1280,620 \\
        --port 1883 --device naive

It does the same work per frame as the agent (the ROI crop, the card's resize and colour order, the
interpreter, one JSON result per frame over MQTT, QoS 0) but one step after another on one thread; paho's
network loop is the only other thread, as in any paho script. At the end it publishes a ``summary`` with
its per-stage times (read = decode, preprocess, invoke, publish). Run by ``inspect-agent bench-pipeline``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.bench_process import CAMERA, PREFIX
from agent.bundle import load_bundle
from agent.preprocess import preprocess

__all__ = ["main", "run_naive"]


def _percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.asarray(samples) if samples else np.zeros(1)
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "count": len(samples)}


def run_naive(
    video: Path, model: Path, threads: int, roi: tuple[int, int, int, int], port: int, device: str
) -> int:
    bundle = load_bundle(model, threads)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{PREFIX}-{device}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    topic = f"{PREFIX}/{device}/{CAMERA}/result"
    capture = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    x, y, w, h = roi
    stages: dict[str, list[float]] = {"read": [], "preprocess": [], "invoke": [], "publish": []}
    seq = 0
    while True:
        t0 = time.perf_counter()
        ok, frame = capture.read()
        if not ok:
            break
        t1 = time.perf_counter()
        capture_wall = time.time()  # as the agent's grabber stamps a frame: once it is decoded
        tensor, _ = preprocess(frame[y : y + h, x : x + w], bundle.card.input)
        t2 = time.perf_counter()
        probs = bundle.model.run(tensor)[bundle.scores_index].reshape(-1)  # by name: a heatmap may come first
        t3 = time.perf_counter()
        seq += 1
        best = int(np.argmax(probs))
        payload = {
            "seq": seq,
            "capture_wall": capture_wall,
            "label": bundle.card.labels[best],
            "score": float(probs[best]),
            "latency_ms": (time.time() - capture_wall) * 1000,
        }
        client.publish(topic, json.dumps(payload), qos=0)
        t4 = time.perf_counter()
        for stage, ms in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[stage].append(ms * 1000)
    capture.release()
    summary = {"frames": seq, "stages_ms": {k: _percentiles(v) for k, v in stages.items()}}
    client.publish(f"{PREFIX}/{device}/summary", json.dumps(summary), qos=1).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()
    return 0 if seq else 66


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.bench_naive", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--video", type=Path, required=True, help="video file, read once to the end")
    parser.add_argument("--model", type=Path, required=True, help=".tflite with its card")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads")
    parser.add_argument("--roi", required=True, help="x,y,width,height in source pixels")
    parser.add_argument("--port", type=int, required=True, help="MQTT broker port on 127.0.0.1")
    parser.add_argument("--device", default="naive", help="device id in the topics")
    args = parser.parse_args(argv)
    x, y, w, h = (int(v) for v in args.roi.split(","))
    return run_naive(args.video, args.model, args.threads, (x, y, w, h), args.port, args.device)


if __name__ == "__main__":
    sys.exit(main())
