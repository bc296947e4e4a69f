"""Command parsing: typed commands, one-line errors, nothing else ever raised."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.commands import (
    COMMANDS,
    CommandError,
    Pause,
    Reload,
    Resume,
    SetThreshold,
    Snapshot,
    error_reply,
    make_reply,
    parse_command,
)

ROOT = Path(__file__).resolve().parent.parent
REPLY_SCHEMA = json.loads((ROOT / "docs" / "schemas" / "mqtt" / "reply.schema.json").read_text())
REPLY_VALIDATOR = jsonschema.Draft202012Validator(REPLY_SCHEMA)


@pytest.mark.parametrize(
    ("name", "payload", "expected"),
    [
        ("snapshot", b"", Snapshot()),  # empty payload = {}
        ("snapshot", b'{"camera": "cam1", "annotated": false}', Snapshot(camera="cam1", annotated=False)),
        ("pause", b" {} ", Pause()),
        ("resume", b'{"camera": "cam2", "request_id": "r7"}', Resume(camera="cam2", request_id="r7")),
        ("set_threshold", b'{"value": 0.7}', SetThreshold(value=0.7)),  # label defaults to "defect"
        ("set_threshold", b'{"value": 1, "label": "scratch"}', SetThreshold(value=1.0, label="scratch")),
        ("reload", b"{}", Reload()),
    ],
)
def test_valid_commands(name, payload, expected):
    assert parse_command(name, payload) == expected


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        (
            "restart",
            b"{}",
            "unknown command 'restart' (known: pause, reload, resume, set_threshold, snapshot)",
        ),
        ("pause", b"\xff\xfe", "payload is not UTF-8 text"),
        (
            "pause",
            b"{camera: 1}",
            "payload is not valid JSON: Expecting property name enclosed in double quotes",
        ),
        ("pause", b"[]", "payload must be a JSON object, got list"),
        ("pause", b'"cam1"', "payload must be a JSON object, got str"),
        ("pause", b"[" * 100_000, "payload is not usable JSON: RecursionError"),  # nesting bomb
        ("pause", b'{"camera": 3}', "field 'camera': input should be a valid string, got 3"),
        (
            "snapshot",
            b'{"annotated": "yes"}',
            "field 'annotated': input should be a valid boolean, got 'yes'",
        ),
        ("set_threshold", b"{}", "missing required field 'value'"),
        (
            "set_threshold",
            b'{"value": "0.5"}',
            "field 'value': input should be a valid number, got '0.5'",
        ),  # strict
        (
            "set_threshold",
            b'{"value": 1.5}',
            "field 'value': input should be less than or equal to 1, got 1.5",
        ),
        ("set_threshold", b'{"value": -0.1}', "field 'value': input should be greater than or equal to 0"),
        ("set_threshold", b'{"value": NaN}', "field 'value': input should be a finite number, got nan"),
        ("reload", b'{"force": true}', "unknown field 'force' (allowed: request_id)"),
        ("pause", b'{"request_id": 5}', "field 'request_id': input should be a valid string, got 5"),
    ],
)
def test_invalid_commands(name, payload, message):
    with pytest.raises(CommandError) as caught:
        parse_command(name, payload)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_errors_echo_the_request_id_when_there_is_one():
    with pytest.raises(CommandError) as caught:
        parse_command("set_threshold", b'{"value": 2, "request_id": "abc"}')
    reply = error_reply(caught.value, wall_time=0.0)
    assert (reply.request_id, reply.command, reply.ok) == ("abc", "set_threshold", False)
    assert reply.error and "less than or equal to 1" in reply.error
    jsonschema.validate(json.loads(reply.model_dump_json()), REPLY_SCHEMA)
    with pytest.raises(CommandError) as caught:
        parse_command("nope", b'{"request_id": "r2"}')
    assert (caught.value.command, caught.value.request_id) == ("nope", "r2")


def test_make_reply():
    reply = make_reply("snapshot", "r1", result={"images": 1}, wall_time=1.0)
    assert reply.model_dump() == {
        "request_id": "r1",
        "command": "snapshot",
        "ok": True,
        "error": None,
        "result": {"images": 1},
        "ts": "1970-01-01T00:00:01.000Z",
    }
    jsonschema.validate(json.loads(reply.model_dump_json()), REPLY_SCHEMA)


def _check_never_raises_else(name: str, payload: bytes) -> None:
    try:
        command = parse_command(name, payload)
    except CommandError as exc:
        text = str(exc)
        assert text and "\n" not in text and "\r" not in text and len(text) < 300
        REPLY_VALIDATOR.validate(json.loads(error_reply(exc, 0.0).model_dump_json()))
    else:
        assert command.name == name


names = st.one_of(st.sampled_from(sorted(COMMANDS)), st.text(max_size=30))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
objects = st.dictionaries(
    st.sampled_from(["camera", "annotated", "label", "value", "request_id", "x"]), json_values, max_size=4
)


@settings(max_examples=300, deadline=None)
@given(name=names, payload=st.binary(max_size=200))
def test_arbitrary_bytes_give_a_command_or_a_one_line_error(name, payload):
    _check_never_raises_else(name, payload)


@settings(max_examples=300, deadline=None)
@given(name=names, data=objects)
def test_arbitrary_json_objects_give_a_command_or_a_one_line_error(name, data):
    _check_never_raises_else(name, json.dumps(data).encode())
