"""The agent end to end: a real process, a real mosquitto, a generated line video, the bundled int8 model.

Every JSON payload received is validated against docs/schemas/mqtt/; images are decoded as JPEG.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from agent.demo_report import LineTruth, belt_roi, summarise
from tests.agent_harness import DEMO_MODEL, AgentProcess, agent_config, payloads, texts, wait_until
from tests.broker import Mosquitto, Subscriber
from tests.mjpeg_server import MjpegServer
from tools.synth_video import LineSpec, generate_video

BASE = "inspect/test-dev"


def _camera_status(sub: Subscriber, camera: str = "line1") -> str:
    """The camera's status in the newest retained state received (each state validated), "" before any."""
    states = payloads(sub, f"{BASE}/state", "state")
    return str(states[-1]["cameras"][camera]["status"]) if states else ""


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """20 s of belt at 640x360: ~20 parts, 30 % of them defective, a seed the model never saw."""
    out = tmp_path_factory.mktemp("line")
    meta = generate_video(out, LineSpec(width=640, height=360, duration=20, seed=7, parts=("washer",)), False)
    meta["dir"] = out
    return meta


def _roi(line: dict[str, Any]) -> dict[str, int]:
    return dict(zip(("x", "y", "width", "height"), belt_roi(line), strict=True))


def test_line_video_one_verdict_per_part_events_and_images(
    mosquitto: Mosquitto, line: dict[str, Any], tmp_path: Path
) -> None:
    sub = Subscriber(mosquitto, "inspect/#")
    config = agent_config(
        tmp_path / "agent.yaml",
        mosquitto,
        str(line["dir"] / "line.avi"),
        camera={"realtime": False, "roi": _roi(line), "trigger": {"mode": "presence"}},
    )
    with AgentProcess(config) as agent:
        assert agent.wait(timeout=120) == 0, agent.log()
    assert wait_until(lambda: texts(sub.matching(f"{BASE}/available"))[-1:] == ["offline"], 5)
    assert texts(sub.matching(f"{BASE}/available"))[0] == "online"
    results = payloads(sub, f"{BASE}/line1/result", "result")
    events = payloads(sub, f"{BASE}/line1/event", "event")
    payloads(sub, f"{BASE}/state", "state")
    assert payloads(sub, f"{BASE}/stats", "stats"), "at least the final stats message"

    summary = summarise(results, events, LineTruth.load(line["dir"] / "line.json"))
    # One verdict per passing part. This belt (seed 7) is the hard, slatted one: the presence detector
    # measured 0-2 extra verdicts per 20 parts on it (tests/test_trigger.py has the per-belt figures).
    assert summary.duplicate_verdicts + summary.unmatched_verdicts <= 0.1 * summary.parts_expected, summary
    assert summary.parts_inspected >= 0.9 * summary.parts_expected, summary
    assert [r["seq"] for r in results] == list(range(1, len(results) + 1))
    ng_results = [r for r in results if r["verdict"] == "NG"]
    assert len(events) == len(ng_results)  # min_consecutive 1, no cooldown: every NG raises an event
    # The bundled model is calibrated on other line videos for recall 0.8 (measured there: 0.82 at
    # precision 0.97, docs/model-report.md). With ~7 defects here the bounds leave room for one or two
    # parts either way, and still fail a broken path (all OK: recall 0; all NG: precision ~0.3).
    assert summary.ng_recall is not None and summary.ng_recall >= 0.6, summary
    assert summary.ng_precision is not None and summary.ng_precision >= 0.4, summary

    for event in events:
        assert event["event_id"].startswith(f"test-dev-line1-{event['seq']}-")
        assert event["roi"] == list(_roi(line).values())
        (image,) = event["images"]
        received = sub.wait_for(image["topic"], 1, timeout=5)[0].payload
        assert len(received) == image["bytes"]
        decoded = cv2.imdecode(np.frombuffer(received, np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None and decoded.shape[:2] == (image["height"], image["width"])
        assert max(decoded.shape[:2]) <= 480  # images.max_side
        assert (tmp_path / "images" / f"{event['event_id']}.jpg").is_file()


def test_killed_agent_goes_offline_by_last_will_and_online_again(
    mosquitto: Mosquitto, line: dict[str, Any], tmp_path: Path
) -> None:
    sub = Subscriber(mosquitto, f"{BASE}/available")
    source = str(line["dir"] / "line.avi")
    config = agent_config(tmp_path / "agent.yaml", mosquitto, source, camera={"loop": True})
    with AgentProcess(config) as agent:
        sub.wait_for(f"{BASE}/available", 1, timeout=20)
        agent.kill()  # SIGKILL: no clean disconnect, the broker publishes the will
    assert wait_until(lambda: texts(sub.matching(f"{BASE}/available"))[-1:] == ["offline"], 10)
    with AgentProcess(config) as agent:
        online = wait_until(lambda: texts(sub.matching(f"{BASE}/available"))[-1:] == ["online"], 20)
        assert online, agent.log()
        assert agent.terminate() == 0
    assert texts(sub.matching(f"{BASE}/available"))[-1] == "offline"


def _command(sub: Subscriber, name: str, payload: bytes, count: int) -> dict[str, Any]:
    sub.client.publish(f"{BASE}/cmd/{name}", payload, qos=1)
    replies = sub.wait_for(f"{BASE}/cmd/{name}/reply", count, timeout=10)
    reply: dict[str, Any] = json.loads(replies[count - 1].payload)
    payloads(sub, f"{BASE}/cmd/{name}/reply", "reply")
    return reply


def test_commands_snapshot_threshold_pause_and_malformed(
    mosquitto: Mosquitto, line: dict[str, Any], tmp_path: Path
) -> None:
    sub = Subscriber(mosquitto, "inspect/#")
    camera = {"loop": True, "roi": _roi(line), "trigger": {"mode": "continuous"}}
    config = agent_config(tmp_path / "agent.yaml", mosquitto, str(line["dir"] / "line.avi"), camera=camera)
    with AgentProcess(config) as agent:
        sub.wait_for(f"{BASE}/line1/result", 3, timeout=30)

        reply = _command(sub, "snapshot", b'{"request_id": "r1", "camera": "line1"}', 1)
        assert reply["ok"] and reply["request_id"] == "r1", reply
        (image,) = reply["result"]["images"]
        jpeg = sub.wait_for(image["topic"], 1, timeout=5)[0].payload
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (
            image["height"],
            image["width"],
        )

        reply = _command(sub, "set_threshold", b'{"value": 0.0}', 1)
        assert reply["ok"] and reply["result"]["thresholds"]["line1"]["defect"] == 0.0
        seen = len(sub.matching(f"{BASE}/line1/result"))
        sub.wait_for(f"{BASE}/line1/result", seen + 5, timeout=10)
        later = payloads(sub, f"{BASE}/line1/result", "result")[seen + 1 :]
        assert later and all(r["threshold"] == 0.0 for r in later)
        assert all(r["verdict"] == "NG" for r in later if r["defect_score"] > 0.0)

        reply = _command(sub, "set_threshold", b'{"label": "dent", "value": 0.5}', 2)
        assert not reply["ok"] and "unknown label 'dent'" in reply["error"]
        reply = _command(sub, "set_threshold", b'{"value": 1.5}', 3)
        assert not reply["ok"] and "value" in reply["error"]
        reply = _command(sub, "snapshot", b"{not json", 2)
        assert not reply["ok"] and "JSON" in reply["error"]
        reply = _command(sub, "pause", b'{"camera": "nope"}', 1)
        assert not reply["ok"] and "nope" in reply["error"]
        reply = _command(sub, "launch_rockets", b"{}", 1)
        assert not reply["ok"] and "unknown command" in reply["error"]

        reply = _command(sub, "pause", b"{}", 2)
        assert reply["ok"]
        assert wait_until(lambda: _camera_status(sub) == "paused", 5)
        reply = _command(sub, "resume", b"{}", 1)
        assert reply["ok"]
        assert agent.proc.poll() is None, "malformed commands must never stop the agent"
        assert agent.terminate() == 0
    assert texts(sub.matching(f"{BASE}/available"))[-1] == "offline"


def test_mjpeg_http_stream_as_source(mosquitto: Mosquitto, line: dict[str, Any], tmp_path: Path) -> None:
    capture = cv2.VideoCapture(str(line["dir"] / "line.avi"))
    frames = [capture.read()[1] for _ in range(60)]
    capture.release()
    sub = Subscriber(mosquitto, "inspect/#")
    with MjpegServer(frames, fps=30) as server:
        camera = {"roi": _roi(line), "trigger": {"mode": "interval", "interval_ms": 100}}
        config = agent_config(tmp_path / "agent.yaml", mosquitto, server.url, camera=camera)
        with AgentProcess(config) as agent:
            sub.wait_for(f"{BASE}/line1/result", 5, timeout=30)
            assert agent.terminate() == 0
    results = payloads(sub, f"{BASE}/line1/result", "result")
    assert all(r["frame"]["width"] == 640 for r in results)
    states = payloads(sub, f"{BASE}/state", "state")
    assert any(s["cameras"]["line1"]["status"] == "online" for s in states)


def test_missing_camera_is_reported_offline_and_the_agent_keeps_running(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    sub = Subscriber(mosquitto, f"{BASE}/state", f"{BASE}/available")
    config = agent_config(tmp_path / "agent.yaml", mosquitto, "/dev/video99")
    with AgentProcess(config) as agent:
        assert wait_until(lambda: _camera_status(sub) == "offline", 20), agent.log()
        error = payloads(sub, f"{BASE}/state")[-1]["cameras"]["line1"]["error"]
        assert "/dev/video99" in error
        assert agent.proc.poll() is None
        assert agent.terminate() == 0


def test_bad_model_is_one_clear_line_and_exit_65(mosquitto: Mosquitto, tmp_path: Path) -> None:
    model = tmp_path / "model.tflite"
    model.write_bytes(DEMO_MODEL.read_bytes()[:-100])  # truncated copy: the card's sha256 no longer matches
    (tmp_path / "model.json").write_text(DEMO_MODEL.with_suffix(".json").read_text())
    config = agent_config(tmp_path / "agent.yaml", mosquitto, "/dev/video99", model=model)
    with AgentProcess(config) as agent:
        assert agent.wait(timeout=30) == 65
        assert "does not match" in agent.log()


def test_secret_password_never_reaches_the_log(
    mosquitto: Mosquitto, line: dict[str, Any], tmp_path: Path
) -> None:
    secret = "pa55-Zebra-7781"
    extra = {"mqtt": {"host": mosquitto.host, "port": mosquitto.port, "username": "agent",
                      "password": {"env": "TEST_MQTT_PASSWORD"}}}  # fmt: skip
    config = agent_config(tmp_path / "agent.yaml", mosquitto, str(line["dir"] / "line.avi"), extra=extra)
    with AgentProcess(config, env={"TEST_MQTT_PASSWORD": secret}) as agent:
        assert agent.wait(timeout=120) == 0, agent.log()
        assert secret not in agent.log()


def test_command_trigger_inspects_once_per_snapshot(
    mosquitto: Mosquitto, line: dict[str, Any], tmp_path: Path
) -> None:
    sub = Subscriber(mosquitto, "inspect/#")
    camera = {"loop": True, "roi": _roi(line), "trigger": {"mode": "command"}}
    config = agent_config(tmp_path / "agent.yaml", mosquitto, str(line["dir"] / "line.avi"), camera=camera)
    with AgentProcess(config) as agent:
        sub.wait_for(f"{BASE}/available", 1, timeout=20)
        assert wait_until(lambda: any(s["cameras"]["line1"]["status"] == "online"
                                      for s in payloads(sub, f"{BASE}/state")), 20)  # fmt: skip
        assert not sub.matching(f"{BASE}/line1/result"), "command mode inspects nothing by itself"
        for n in (1, 2):
            assert _command(sub, "snapshot", b"{}", n)["ok"]
            results = sub.wait_for(f"{BASE}/line1/result", n, timeout=10)
        assert len(results) == 2
        assert agent.terminate() == 0


def test_config_edit_reloads_bad_edit_is_rejected_and_reported(
    mosquitto: Mosquitto, line: dict[str, Any], tmp_path: Path
) -> None:
    sub = Subscriber(mosquitto, "inspect/#")
    camera = {"loop": True, "roi": _roi(line), "trigger": {"mode": "continuous"}}
    path = tmp_path / "agent.yaml"
    config = agent_config(path, mosquitto, str(line["dir"] / "line.avi"), camera=camera)
    good_text = config.read_text()
    with AgentProcess(config) as agent:
        sub.wait_for(f"{BASE}/line1/result", 1, timeout=30)
        path.write_text(good_text + "decision: {sensitvity: 0.9}\n")  # a typo: must be rejected
        reply = json.loads(sub.wait_for(f"{BASE}/cmd/reload/reply", 1, timeout=15)[0].payload)
        assert not reply["ok"] and "sensitvity" in reply["error"]
        last = lambda: payloads(sub, f"{BASE}/state", "state")[-1]["last_error"] or ""  # noqa: E731
        assert wait_until(lambda: "rejected" in last() and "sensitvity" in last(), 5)
        assert agent.proc.poll() is None, "a bad edit never stops the agent"

        path.write_text(good_text + "decision: {thresholds: {defect: 0.0}}\n")  # a good edit applies
        reply = json.loads(sub.wait_for(f"{BASE}/cmd/reload/reply", 2, timeout=15)[1].payload)
        assert reply["ok"], reply
        assert reply["result"]["cameras_restarted"] == [] and reply["result"]["restart_required"] == []
        seen = len(sub.matching(f"{BASE}/line1/result"))
        sub.wait_for(f"{BASE}/line1/result", seen + 3, timeout=10)
        assert payloads(sub, f"{BASE}/line1/result")[-1]["threshold"] == 0.0
        assert wait_until(lambda: payloads(sub, f"{BASE}/state")[-1]["last_error"] is None, 5)

        # A camera change restarts that camera; a broker change is reported, and the running one kept.
        edited = yaml.safe_load(good_text)
        edited["cameras"]["line1"]["trigger"] = {"mode": "interval", "interval_ms": 200}
        edited["mqtt"]["keepalive_s"] = 45
        path.write_text(yaml.safe_dump(edited))
        reply = json.loads(sub.wait_for(f"{BASE}/cmd/reload/reply", 3, timeout=15)[2].payload)
        assert reply["ok"] and reply["result"]["cameras_restarted"] == ["line1"], reply
        assert reply["result"]["restart_required"] == ["mqtt"], reply
        seen = len(sub.matching(f"{BASE}/line1/result"))
        sub.wait_for(f"{BASE}/line1/result", seen + 3, timeout=15)  # the restarted camera inspects again
        # seq and the stats totals count since the agent started, across the camera's restart.
        seqs = [r["seq"] for r in payloads(sub, f"{BASE}/line1/result")]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
        sub.wait_for(f"{BASE}/stats", len(sub.matching(f"{BASE}/stats")) + 2, timeout=10)
        stats = payloads(sub, f"{BASE}/stats", "stats")[-1]
        assert stats["cameras"]["line1"]["parts"] >= max(seqs), stats
        assert agent.terminate() == 0


def test_stream_that_dies_goes_offline_and_resumes(
    mosquitto: Mosquitto, line: dict[str, Any], tmp_path: Path
) -> None:
    capture = cv2.VideoCapture(str(line["dir"] / "line.avi"))
    frames = [capture.read()[1] for _ in range(30)]
    capture.release()
    sub = Subscriber(mosquitto, "inspect/#")

    with MjpegServer(frames, fps=20) as server:
        camera = {
            "trigger": {"mode": "interval", "interval_ms": 100},
            "reconnect_min_s": 0.2,
            "reconnect_max_s": 1,
        }
        config = agent_config(tmp_path / "agent.yaml", mosquitto, server.url, camera=camera)
        with AgentProcess(config) as agent:
            sub.wait_for(f"{BASE}/line1/result", 3, timeout=30)
            server.stop()  # the camera is unplugged
            assert wait_until(lambda: _camera_status(sub) == "offline", 20), agent.log()
            server.start()  # and plugged back in
            assert wait_until(lambda: _camera_status(sub) == "online", 20), agent.log()
            seen = len(sub.matching(f"{BASE}/line1/result"))
            sub.wait_for(f"{BASE}/line1/result", seen + 3, timeout=20)  # inspection resumed
            assert agent.terminate() == 0


def test_reload_swaps_the_model_bundle_without_a_restart(
    mosquitto: Mosquitto, line: dict[str, Any], tmp_path: Path
) -> None:
    v2 = tmp_path / "v2" / DEMO_MODEL.name
    v2.parent.mkdir()
    v2.write_bytes(DEMO_MODEL.read_bytes())
    card = json.loads(DEMO_MODEL.with_suffix(".json").read_text())
    v2.with_suffix(".json").write_text(json.dumps({**card, "version": "2"}))
    sub = Subscriber(mosquitto, "inspect/#")
    camera = {"loop": True, "trigger": {"mode": "interval", "interval_ms": 100}}
    path = tmp_path / "agent.yaml"
    agent_config(path, mosquitto, str(line["dir"] / "line.avi"), camera=camera)
    with AgentProcess(path) as agent:
        sub.wait_for(f"{BASE}/line1/result", 2, timeout=30)
        assert payloads(sub, f"{BASE}/state")[-1]["model"]["version"] == card["version"]
        edited = yaml.safe_load(path.read_text())
        edited["model"]["path"] = str(v2)
        path.write_text(yaml.safe_dump(edited))
        reply = json.loads(sub.wait_for(f"{BASE}/cmd/reload/reply", 1, timeout=15)[0].payload)
        assert reply["ok"] and reply["result"]["cameras_restarted"] == [], reply
        assert wait_until(lambda: payloads(sub, f"{BASE}/state", "state")[-1]["model"]["version"] == "2", 5)
        seen = len(sub.matching(f"{BASE}/line1/result"))
        sub.wait_for(f"{BASE}/line1/result", seen + 3, timeout=10)  # inspection went on with the new bundle
        assert agent.terminate() == 0
