"""MQTT payload models, topic helpers, and the generated JSON Schemas."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from agent.messages import (
    SCHEMA_VERSION,
    CameraState,
    Event,
    FrameInfo,
    ModelRef,
    Reply,
    Result,
    Topics,
    check_topic_id,
    iso_ts,
    new_event_id,
)

ROOT = Path(__file__).resolve().parent.parent
SHA = "0123456789abcdef" * 4


def schema(kind: str) -> dict:
    return json.loads((ROOT / "docs" / "schemas" / "mqtt" / f"{kind}.schema.json").read_text())


def a_result(**changes: object) -> dict:
    result = dict(
        ts="2026-01-31T08:15:02.123Z",
        seq=3,
        camera="cam1",
        part_id=None,
        verdict="NG",
        label="scratch",
        score=0.8,
        defect_score=0.8,
        threshold=0.5,
        probabilities={"good": 0.2, "scratch": 0.8},
        latency_ms=20.0,
        model_sha256=SHA[:12],
    )
    result.update(changes)
    return result


def test_committed_schemas_are_up_to_date():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "scripts/gen_schemas.py", "--check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("wall_time", "expected"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1.2349, "1970-01-01T00:00:01.234Z"),  # truncated, not rounded
        (1769847302.5, "2026-01-31T08:15:02.500Z"),
    ],
)
def test_iso_ts(wall_time, expected):
    assert iso_ts(wall_time) == expected


def test_event_ids_are_stable_topic_safe_and_differ_across_restarts():
    first = new_event_id("dev1", "cam1", 7, 1769847302.5)
    assert first == new_event_id("dev1", "cam1", 7, 1769847302.5)
    assert first.startswith("dev1-cam1-7-") and check_topic_id(first, "event id") == first
    assert new_event_id("dev1", "cam1", 7, 1769847302.501) != first  # seq restarts; the stamp does not
    assert new_event_id("dev1", "cam1", 0, 0.0) == "dev1-cam1-0-0"


@pytest.mark.parametrize(
    "bad",
    [
        "",  # empty level
        "cam/1",  # would add a topic level
        "cam+",  # wildcard
        "cam#",  # wildcard
        "cam 1",  # space
        "-cam",  # must start with a letter or digit
    ],
)
def test_topic_ids_that_would_break_a_topic_are_refused(bad):
    with pytest.raises(ValueError, match="camera id"):
        check_topic_id(bad, "camera id")


def test_topics():
    t = Topics("plant/line3", "dev1")
    assert (t.available, t.state, t.stats) == (
        "plant/line3/dev1/available",
        "plant/line3/dev1/state",
        "plant/line3/dev1/stats",
    )
    assert t.result("cam1") == "plant/line3/dev1/cam1/result"
    assert t.event("cam1") == "plant/line3/dev1/cam1/event"
    assert t.image("cam1", "e1") == "plant/line3/dev1/cam1/image/e1"
    assert t.image("cam1", "e1", raw=True) == "plant/line3/dev1/cam1/image/e1/raw"
    assert (t.cmd_filter, t.reply("pause")) == ("plant/line3/dev1/cmd/+", "plant/line3/dev1/cmd/pause/reply")
    for prefix in ("", "a/#", "/a", "a/"):
        with pytest.raises(ValueError, match="prefix"):
            Topics(prefix, "dev1")
    with pytest.raises(ValueError, match="device id"):
        Topics("inspect", "dev/1")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"verdict": "BAD"}, "verdict"),  # only OK / NG
        ({"score": 1.5}, "score"),  # probabilities are 0..1
        ({"probabilities": {"good": -0.1}}, "probabilities"),
        ({"model_sha256": SHA}, "model_sha256"),  # the first 12 hex digits only
        ({"ts": "2026-01-31 08:15:02"}, "ts"),  # ISO 8601 UTC with ms and Z
        ({"seq": -1}, "seq"),
        ({"extra": 1}, "extra"),  # unknown keys refused
    ],
)
def test_result_rejects(changes, field):
    with pytest.raises(ValidationError, match=field):
        Result.model_validate(a_result(**changes))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(a_result(**changes), schema("result"))


def test_models_round_trip_through_their_schema():
    result = Result.model_validate(a_result())
    jsonschema.validate(json.loads(result.model_dump_json()), schema("result"))
    event = Event(
        event_id=new_event_id("dev1", "cam1", 3, 0.0),
        ts=result.ts,
        seq=3,
        device="dev1",
        camera="cam1",
        verdict="NG",
        label="scratch",
        score=0.8,
        defect_score=0.8,
        threshold=0.5,
        roi=[0, 0, 64, 48],
        model=ModelRef(name="m", version="1", sha256=SHA),
        frame=FrameInfo(width=64, height=48, index=9),
    )
    data = json.loads(event.model_dump_json())
    assert data["regions"] == [] and data["images"] == []  # present and empty until a later stage fills them
    jsonschema.validate(data, schema("event"))
    with pytest.raises(ValidationError, match="roi"):
        Event.model_validate({**data, "roi": [0, 0, 64]})
    reply = Reply(request_id=None, command="reload", ok=True, error=None, result=None, ts=result.ts)
    jsonschema.validate(json.loads(reply.model_dump_json()), schema("reply"))


def test_state_announces_the_schema_version_and_camera_statuses_are_closed():
    assert schema("state")["properties"]["schema_version"]["default"] == SCHEMA_VERSION
    with pytest.raises(ValidationError, match="status"):
        CameraState(status="broken", source="x")  # type: ignore[arg-type]


def test_every_field_is_described_or_obvious():
    """The schemas are the documentation: the top-level descriptions exist."""
    for kind in ("state", "stats", "result", "event", "reply"):
        assert schema(kind)["description"], kind
        assert schema(kind)["additionalProperties"] is False, kind
    text = (ROOT / "docs" / "mqtt.md").read_text()
    for kind in ("state", "stats", "result", "event", "reply"):
        assert re.search(rf"schemas/mqtt/{kind}\.schema\.json", text), kind
