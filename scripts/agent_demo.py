"""The main job: the agent inspects a line video and publishes over MQTT, while we watch and score it.

    python scripts/agent_demo.py --out out/agent-demo            # what `make demo` runs (~1-2 min)

1. makes a line video with ground truth (parts on a belt, ~30 % defective, a seed the model never saw),
2. starts a broker on 127.0.0.1 (mosquitto, else amqtt),
3. runs `inspect-agent run` on it in its own process with the bundled int8 model,
4. prints every defect event as it arrives over MQTT and keeps the images,
5. ends with parts seen, NG flagged, precision/recall against the ground truth, latency p50/p99,
   and OUT/report.html with the annotated defect images.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from agent.demo_broker import LocalBroker
from agent.demo_report import LineTruth, belt_roi, summarise, write_report
from tools.synth_video import LineSpec, generate_video

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "models/demo/parts_int8.tflite"


class Watcher:
    """Subscribes to everything the agent publishes; prints events live; keeps results, events, images."""

    def __init__(self, host: str, port: int, images: Path) -> None:
        self.results: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.stats: list[dict[str, Any]] = []
        self.states: list[dict[str, Any]] = []
        self.images = images
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="inspect-demo-watcher")
        self.client.on_connect = lambda c, *_: c.subscribe("inspect/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic.split("/")
        with self._lock:
            if "image" in topic:
                (self.images / f"{topic[topic.index('image') + 1]}.jpg").write_bytes(msg.payload)
            elif topic[-1] == "result":
                self.results.append(json.loads(msg.payload))
                print("." if self.results[-1]["verdict"] == "OK" else "", end="", flush=True)
            elif topic[-1] == "event":
                e = json.loads(msg.payload)
                self.events.append(e)
                size = sum(i["bytes"] for i in e["images"]) // 1024
                print(
                    f"\n  NG  part {e['part_id']:>3}  {e['label']:<8} defect score {e['defect_score']:.2f} > "
                    f"{e['threshold']:.2f}  image {size} KB  ({e['event_id']})",
                    flush=True,
                )
            elif topic[-1] == "stats":
                self.stats.append(json.loads(msg.payload))
            elif topic[-1] == "state":
                self.states.append(json.loads(msg.payload))
            elif topic[-1] == "available":
                print(f"\n  [{msg.topic} = {msg.payload.decode()}]", flush=True)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _config(out: Path, video: dict[str, Any], model: Path, port: int) -> Path:
    config = {
        "device_id": "demo-line",
        "mqtt": {"host": "127.0.0.1", "port": port, "stats_interval_s": 5},
        "model": {"path": str(model.resolve())},
        "cameras": {
            "line1": {
                "source": "line/line.avi",
                "realtime": True,
                "roi": dict(zip(("x", "y", "width", "height"), belt_roi(video), strict=True)),
                "trigger": {"mode": "presence", "presence": {"direction": "left_to_right"}},
            }
        },
        "images": {"dir": "images", "max_count": 500},
    }  # fmt: skip
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--out", type=Path, default=Path("out/agent-demo"), help="working folder (default: %(default)s)")
    add("--model", type=Path, default=DEFAULT_MODEL, help="model bundle (default: the bundled int8 model)")
    add("--duration", type=float, default=45.0, help="seconds of line video (default: %(default)s)")
    add("--seed", type=int, default=2026, help="line video seed (default: %(default)s)")
    add("--parts", default="disc,washer,plate,gear", help="part kinds on the line (default: %(default)s)")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "report/images").mkdir(parents=True, exist_ok=True)

    print(f"== 1/4 line video: {args.duration:g} s of parts on a belt (seed {args.seed})", flush=True)
    spec = LineSpec(duration=args.duration, seed=args.seed, parts=tuple(args.parts.split(",")))
    video = generate_video(out / "line", spec, progress=False)
    counts: dict[str, int] = {}
    for part in video["parts"]:
        counts[part["label"]] = counts.get(part["label"], 0) + 1
    print(f"   {out / 'line/line.avi'}: {video['frame_count']} frames, {len(video['parts'])} parts {counts}")

    with LocalBroker(out / "broker") as broker:
        print(f"== 2/4 broker: {broker.kind} on {broker.host}:{broker.port}", flush=True)
        watcher = Watcher(broker.host, broker.port, out / "report/images")
        config = _config(out, video, args.model, broker.port)
        print(f"== 3/4 agent: inspect-agent run {config}  (log: {out / 'agent.log'})", flush=True)
        started = time.monotonic()
        with (out / "agent.log").open("w") as log:
            agent = subprocess.run(
                [sys.executable, "-m", "agent.cli", "run", str(config)],
                stderr=log,
                timeout=args.duration * 4 + 120,
                check=False,
            )
        elapsed = time.monotonic() - started
        time.sleep(0.5)  # the last messages are already acknowledged; let the watcher's loop hand them over
        watcher.stop()
    if agent.returncode != 0:
        print(f"\nagent exited with code {agent.returncode}; see {out / 'agent.log'}", file=sys.stderr)
        return agent.returncode

    print(f"\n== 4/4 summary (agent ran {elapsed:.1f} s)")
    truth = LineTruth.load(out / "line/line.json")
    summary = summarise(watcher.results, watcher.events, truth)
    last_stats = watcher.stats[-1] if watcher.stats else {}
    extra = {
        "model": str(args.model),
        "agent_seconds": round(elapsed, 1),
        "rss_mb": last_stats.get("process", {}).get("rss_mb"),
    }
    report = write_report(out / "report", summary, watcher.results, watcher.events, truth, extra)
    s = summary
    print(f"   parts on the line  {s.parts_expected}, inspected {s.parts_inspected} "
          f"(missed {s.parts_missed}, duplicate verdicts {s.duplicate_verdicts}, "
          f"verdicts with no part {s.unmatched_verdicts})")  # fmt: skip
    print(f"   NG flagged         {s.true_ng + s.false_ng} (true {s.true_ng}, false {s.false_ng}); "
          f"defects missed {s.missed_ng}")  # fmt: skip
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    print(f"   NG precision {fmt(s.ng_precision)}  recall {fmt(s.ng_recall)}  accuracy {fmt(s.accuracy)}")
    print(f"   capture-to-result latency p50 {fmt(s.latency_ms_p50)} ms, p99 {fmt(s.latency_ms_p99)} ms")
    print(f"   report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
