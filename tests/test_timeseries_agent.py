"""The agent with a sensor group, end to end: a real broker, the real agent process, the bundled model.

A held-out synthetic recording (a seed the model never saw) is replayed over MQTT as JSON samples
with their own timestamps; the agent resamples, inspects a window every stride and publishes events.
Each event's window is compared with the labelled anomaly spans:

* event precision: share of events whose window overlaps a labelled span; bound >= 0.8
* span recall: share of labelled spans (at least 1 s long) overlapped by an event; bound >= 0.6

The replay is deterministic (samples carry their own times, none may be lost: checked), so the figures are
fixed for a given model: 0.93 and 0.78 (7 of 9 spans) with the bundled dynamic-range model
(docs/timeseries.md). The bounds leave a margin for a rebuilt model; chance is far below them (random events
would hit a span about as often as a window touches one, 37 %; flagging nothing has recall 0).

Then bad input on the same agent: not a number, NaN, a missing field, an unknown channel, a sample
too late, a clock jump, out-of-order samples: each is counted (the log's stop line lists the counters),
and the agent keeps going and exits 0.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from agent.modelcard import card_path_for, load_series_card
from tests.agent_harness import ROOT, AgentProcess, payloads, wait_until
from tests.broker import Mosquitto, Subscriber
from tools.timeseries.synth import generate

MODEL = ROOT / "models/sensors/sensors_dynamic.tflite"
ALL = "plant/press1/all"
RAW = "plant/press1/raw"
SECONDS = 480
RATE_LIMIT = 250  # messages/s: mosquitto queues at most 1000 messages for a slow subscriber, then drops


def _config(path: Path, broker: Mosquitto) -> Path:
    channels = ["temperature", "pressure", "vibration", "speed", "current"]
    config: dict[str, Any] = {
        "device_id": "test-dev",
        "mqtt": {"host": broker.host, "port": broker.port, "stats_interval_s": 1, "reconnect_min_s": 0.2,
                 "reconnect_max_s": 1},
        "sensors": {"press1": {
            "model": str(MODEL),
            "source": {"mqtt": {"qos": 1, "topics": [
                {"topic": ALL, "fields": {c: c for c in channels}},
                {"topic": f"{RAW}/+"},
            ]}},
        }},
        "images": {"dir": str(path.parent / "images")},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class _Publisher:
    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.max_inflight_messages_set(200)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _iso(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _counters(log: str) -> dict[str, int]:
    match = re.search(r"sensors press1: stopped; (\{.*\})", log)
    assert match, log[-2000:]
    return dict(ast.literal_eval(match.group(1)))


@pytest.mark.skipif(not MODEL.is_file(), reason="bundled sensor model missing: scripts/build_sensor_model.py")
def test_replayed_stream_events_match_labelled_spans_and_bad_input_is_counted(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    recording = generate(SECONDS, 10.0, seed=4242, anomalies_per_hour=120)
    base = float(int(time.time()))  # whole seconds: on the model's 10 Hz grid
    config = _config(tmp_path / "agent.yaml", mosquitto)
    sub = Subscriber(mosquitto, "inspect/test-dev/#")
    publisher = _Publisher(mosquitto)
    try:
        with AgentProcess(config) as agent:
            assert sub.wait_for("inspect/test-dev/available", timeout=30)
            time.sleep(0.5)  # the sensor subscription is made on connect, just after "online"
            started = time.monotonic()
            for i, (t, row) in enumerate(zip(recording.times, recording.values.tolist(), strict=True)):
                sample = {"ts": base + float(t), **dict(zip(recording.channels, row, strict=True))}
                publisher.send(ALL, json.dumps(sample).encode())
                time.sleep(max(0.0, started + i / RATE_LIMIT - time.monotonic()))
            windows = (SECONDS * 10 - 64) // 8
            assert wait_until(lambda: agent.proc.poll() is not None or _events_settled(sub), 30)
            events = payloads(sub, "inspect/test-dev/press1/event", "sensor-event")
            _check_events(events, recording, base)

            end = base + SECONDS
            bad = [
                (f"{RAW}/temperature", b"hot"),  # not a number
                (f"{RAW}/temperature", b"NaN"),
                (f"{RAW}/humidity", b"55"),  # a channel the model does not know
                (ALL, json.dumps({"ts": end, "temperature": 62}).encode()),  # fields missing
                (f"{RAW}/pressure", json.dumps({"value": 5.0, "ts": end - 5}).encode()),  # rows built: late
            ]
            for topic, payload in bad:
                publisher.send(topic, payload).wait_for_publish(5)
            jump = end + 5000  # the PLC clock jumps ahead; then samples arrive out of order
            order = [0, 2, 1, 3, 5, 4, *range(6, 90)]
            for i in order:
                values = dict(zip(recording.channels, recording.values[i].tolist(), strict=True))
                publisher.send(ALL, json.dumps({"ts": jump + i / 10, **values}).encode()).wait_for_publish(5)
            assert wait_until(lambda: _stats_counters(sub).get("clock_jumps") == 1, 10), _stats_counters(sub)
            assert agent.proc.poll() is None, agent.log()[-2000:]
            assert agent.terminate() == 0, agent.log()[-2000:]
            counters = _counters(agent.log())
            log = agent.log()
    finally:
        publisher.close()
        sub.close()
    assert counters["samples"] == 5 * (SECONDS * 10 + 90), "samples were lost on the way"
    assert counters["non_numeric"] == 1 and counters["nan"] == 1, counters
    assert counters["unknown_topic"] == 1 and counters["missing_field"] == 1, counters
    assert counters["late"] >= 1 and counters["clock_jumps"] == 1, counters
    assert counters["windows"] >= windows, counters  # every stride of the replay was inspected
    assert counters["windows"] > windows, "the stream after the clock jump was not inspected"
    assert "Traceback" not in log
    for word in ("not a number", "humidity", "no field"):
        assert word in log, word


def _stats_counters(sub: Subscriber) -> dict[str, int]:
    """The newest stats message's counters of the group (the stats schema checks every message)."""
    stats = payloads(sub, "inspect/test-dev/stats", "stats")
    return dict(stats[-1]["sensors"].get("press1", {})) if stats else {}


def _events_settled(sub: Subscriber) -> bool:
    """True once no new event arrived for a second (the agent has worked through the replay)."""
    count = len(sub.matching("inspect/test-dev/press1/event"))
    time.sleep(1.0)
    return count > 0 and len(sub.matching("inspect/test-dev/press1/event")) == count


def _check_events(events: list[dict[str, Any]], recording: Any, base: float) -> None:
    spans = [(base + s.start, base + s.end) for s in recording.spans]
    assert events, "no event"
    hits = 0
    for event in events:
        start, end = _iso(event["window"]["start"]), _iso(event["window"]["end"])
        assert event["group"] == "press1" and event["verdict"] == "NG" and event["score"] > event["threshold"]
        assert round(end - start, 1) == 6.3  # 64 samples at 10 Hz
        assert event["channels"], event
        hits += any(s < end and start < e for s, e in spans)
    precision = hits / len(events)
    long_spans = [(s, e) for s, e in spans if e - s >= 1.0]
    found = sum(any(_iso(ev["window"]["start"]) < e and s < _iso(ev["window"]["end"]) for ev in events)
                for s, e in long_spans)  # fmt: skip
    recall = found / len(long_spans)
    print(f"events {len(events)}, precision {precision:.3f}; spans {len(long_spans)}, recall {recall:.3f}")
    assert precision >= 0.8, f"event precision {precision:.3f} ({hits}/{len(events)})"
    assert recall >= 0.6, f"span recall {recall:.3f} ({found}/{len(long_spans)})"


@pytest.mark.skipif(not MODEL.is_file(), reason="bundled sensor model missing: scripts/build_sensor_model.py")
def test_csv_replay_runs_to_the_end_counts_bad_cells_and_exits(mosquitto: Mosquitto, tmp_path: Path) -> None:
    from tools.timeseries.synth import write_recording

    write_recording(generate(120, 10.0, seed=77, anomalies_per_hour=120), tmp_path, "csv", {})
    lines = (tmp_path / "series.csv").read_text().splitlines()
    cells = lines[500].split(",")
    cells[1], cells[3] = "n/a", "nan"  # temperature not a number, vibration NaN
    lines[500] = ",".join(cells)
    (tmp_path / "series.csv").write_text("\n".join(lines) + "\n")
    config = _config(tmp_path / "agent.yaml", mosquitto)
    data = yaml.safe_load(config.read_text())
    data["sensors"]["press1"]["source"] = {"csv": {"path": "series.csv", "speed": 0}}  # relative to the file
    config.write_text(yaml.safe_dump(data))
    sub = Subscriber(mosquitto, "inspect/test-dev/#")
    try:
        with AgentProcess(config) as agent:
            assert agent.wait(60) == 0, agent.log()[-2000:]  # ends by itself once the file is inspected
            counters = _counters(agent.log())
    finally:
        sub.close()
    assert counters["non_numeric"] == 1 and counters["nan"] == 1, counters
    # rows sit on the absolute 10 Hz grid; the replay starts between two grid times, so one row less
    assert counters["samples"] == 5 * 1200 - 2 and counters["rows"] in (1199, 1200), counters
    assert counters["windows"] == 1 + (counters["rows"] - 64) // 8, counters
    assert counters["events"] == len(payloads(sub, "inspect/test-dev/press1/event", "sensor-event")) > 0


REPLY = "inspect/test-dev/cmd/reload/reply"
EVENTS = "inspect/test-dev/press1/event"


@pytest.mark.skipif(not MODEL.is_file(), reason="bundled sensor model missing: scripts/build_sensor_model.py")
def test_reload_applies_sensor_decisions_in_place_restarts_a_changed_group_and_keeps_its_counts(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = _config(tmp_path / "agent.yaml", mosquitto)
    recording = generate(50, 10.0, seed=99, anomalies_per_hour=0)
    base = float(int(time.time()))
    sub = Subscriber(mosquitto, "inspect/test-dev/#")
    publisher = _Publisher(mosquitto)

    def send(topic: str, rows: range) -> None:
        for i in rows:
            values = dict(zip(recording.channels, recording.values[i].tolist(), strict=True))
            sample = {"ts": base + float(recording.times[i]), **values}
            publisher.send(topic, json.dumps(sample).encode()).wait_for_publish(5)

    def reload(edit: Any) -> dict[str, Any]:
        data = yaml.safe_load(config.read_text())
        edit(data)
        config.write_text(yaml.safe_dump(data))  # the agent notices the edit, as after SIGHUP
        seen = len(sub.matching(REPLY))
        return dict(json.loads(sub.wait_for(REPLY, seen + 1, timeout=15)[seen].payload))

    new_topic = "plant/press1/v2"
    try:
        with AgentProcess(config) as agent:
            assert sub.wait_for("inspect/test-dev/available", timeout=30)
            time.sleep(0.5)  # the sensor subscription is made on connect, just after "online"
            # A decision change applies in place: every window is NG from here on, nothing restarts.
            reply = reload(lambda d: d["sensors"]["press1"].update(decision={"thresholds": {"defect": 0.0}}))
            assert reply["ok"] and reply["result"]["sensors_restarted"] == [], reply
            send(
                ALL, range(0, 100)
            )  # 10 s: 4-5 windows of 64 samples, stride 8 (the last rows wait for more)
            assert wait_until(lambda: len(sub.matching(EVENTS)) >= 4, 15), _stats_counters(sub)
            before = len(sub.matching(EVENTS))
            assert {e["threshold"] for e in payloads(sub, EVENTS, "sensor-event")} == {0.0}

            # A new topic restarts the group: the old topic is no longer heard, the new one is, and the
            # counters and window numbers go on.
            reply = reload(
                lambda d: d["sensors"]["press1"]["source"]["mqtt"]["topics"][0].update(topic=new_topic)
            )
            assert reply["ok"] and reply["result"]["sensors_restarted"] == ["press1"], reply
            assert reply["result"]["restart_required"] == [], reply
            send(ALL, range(100, 150))
            send(new_topic, range(150, 250))
            assert wait_until(lambda: _stats_counters(sub).get("samples") == 1000, 15), _stats_counters(sub)
            assert wait_until(lambda: len(sub.matching(EVENTS)) >= before + 4, 15), _stats_counters(sub)
            seqs = [e["seq"] for e in payloads(sub, EVENTS, "sensor-event")]
            assert seqs == list(range(1, len(seqs) + 1)), seqs

            # A bad model is rejected before anything stops; the running group keeps inspecting.
            reply = reload(lambda d: d["sensors"]["press1"].update(model=str(tmp_path / "missing.tflite")))
            assert not reply["ok"] and "missing.tflite" in reply["error"], reply
            send(new_topic, range(250, 300))
            assert wait_until(lambda: _stats_counters(sub).get("samples") == 1250, 15), _stats_counters(sub)

            # Disabled, then enabled again: it stops, and its counts and window numbers go on after.
            reply = reload(lambda d: d["sensors"]["press1"].update(model=str(MODEL), enabled=False))
            assert reply["ok"] and reply["result"]["sensors_restarted"] == ["press1"], reply
            reply = reload(lambda d: d["sensors"]["press1"].update(enabled=True))
            assert reply["ok"] and reply["result"]["sensors_restarted"] == ["press1"], reply
            events = len(sub.matching(EVENTS))
            send(new_topic, range(300, 400))
            assert wait_until(lambda: _stats_counters(sub).get("samples") == 1750, 15), _stats_counters(sub)
            assert wait_until(lambda: len(sub.matching(EVENTS)) >= events + 4, 15), _stats_counters(sub)
            seqs = [e["seq"] for e in payloads(sub, EVENTS, "sensor-event")]
            assert seqs == list(range(1, len(seqs) + 1)), seqs

            # A bundle copied over the running one under the same path is a new model: the group restarts
            # on it, and its events name it.
            in_place = tmp_path / "press.tflite"
            shutil.copy(MODEL, in_place)
            shutil.copy(card_path_for(MODEL), card_path_for(in_place))
            reply = reload(lambda d: d["sensors"]["press1"].update(model=str(in_place)))
            assert reply["ok"] and reply["result"]["sensors_restarted"] == ["press1"], reply
            int8 = MODEL.with_name("sensors_int8.tflite")
            shutil.copy(int8, in_place)
            shutil.copy(card_path_for(int8), card_path_for(in_place))
            reply = reload(lambda d: None)  # the same config, rewritten: only the file changed
            assert reply["ok"] and reply["result"]["sensors_restarted"] == ["press1"], reply
            reply = reload(lambda d: None)  # and nothing restarts when nothing changed
            assert reply["ok"] and reply["result"]["sensors_restarted"] == [], reply
            events = len(sub.matching(EVENTS))
            send(new_topic, range(400, 500))
            assert wait_until(lambda: len(sub.matching(EVENTS)) >= events + 4, 15), _stats_counters(sub)
            new_sha = load_series_card(card_path_for(int8)).tflite_sha256
            assert payloads(sub, EVENTS, "sensor-event")[-1]["model"]["sha256"] == new_sha

            # Cameras on a sensors-only agent need a restart (there is no image model loaded).
            def add_camera(d: dict[str, Any]) -> None:
                d["sensors"]["press1"]["model"] = str(MODEL)
                d["cameras"] = {"line1": {"source": str(tmp_path / "line.avi")}}

            reply = reload(add_camera)
            assert reply["ok"] and reply["result"]["restart_required"] == ["cameras"], reply
            assert agent.proc.poll() is None
            assert agent.terminate() == 0, agent.log()[-2000:]
            assert "Traceback" not in agent.log()
    finally:
        publisher.close()
        sub.close()


@pytest.mark.skipif(not MODEL.is_file(), reason="bundled sensor model missing: scripts/build_sensor_model.py")
def test_a_serial_port_group_publishes_events_and_survives_the_port_going_away(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    from tests.test_sensor_serial import Pty

    port = Pty(tmp_path / "usb-press1-port0")
    port.plug()
    config = _config(tmp_path / "agent.yaml", mosquitto)
    data = yaml.safe_load(config.read_text())
    data["sensors"]["press1"]["source"] = {"serial": {"port": str(port.link), "reconnect_s": 0.2}}
    data["sensors"]["press1"]["decision"] = {"thresholds": {"defect": 0.0}}  # every window is an event
    config.write_text(yaml.safe_dump(data))
    recording = generate(20, 10.0, seed=98, anomalies_per_hour=0)
    base = float(int(time.time()))
    sub = Subscriber(mosquitto, "inspect/test-dev/#")
    try:
        with AgentProcess(config) as agent:
            # Opening a port flushes what was waiting in it (pyserial), as on a real line: wait for it.
            assert wait_until(lambda: "open at 115200 baud" in agent.log(), 30), agent.log()[-2000:]
            for i in range(100):  # 10 s of samples, one JSON line each, as fast as the port takes them
                values = dict(zip(recording.channels, recording.values[i].tolist(), strict=True))
                port.write(json.dumps({"ts": base + float(recording.times[i]), **values}).encode() + b"\n")
            assert wait_until(lambda: len(sub.matching(EVENTS)) >= 4, 20), _stats_counters(sub)
            events = payloads(sub, EVENTS, "sensor-event")
            assert all(e["group"] == "press1" and e["threshold"] == 0.0 for e in events)
            assert wait_until(lambda: _stats_counters(sub).get("samples") == 500, 10), _stats_counters(sub)
            port.unplug()
            assert wait_until(lambda: _stats_counters(sub).get("reconnects") == 1, 10), _stats_counters(sub)
            assert agent.proc.poll() is None
            assert agent.terminate() == 0, agent.log()[-2000:]
            assert "serial port" in agent.log() and "Traceback" not in agent.log()
    finally:
        sub.close()
