"""Config loading: each bad config names the exact key path, the value and the line; secrets never leak."""

from __future__ import annotations

import copy
import importlib.util
import io
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config import (
    AgentConfig,
    ConfigError,
    SecretRef,
    check_config_main,
    config_hash,
    load_config,
    parse_config,
    resolve_secret,
)
from agent.status import ExitStatus
from agent.wiring import broker_settings

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cr3t-Pa55word"
MINIMAL: dict[str, Any] = {
    "model": {"path": "models/demo.tflite"},
    "cameras": {"line1": {"source": "line.avi"}},
}


def _config(**changes: Any) -> dict[str, Any]:
    """The minimal config with keys set (``mqtt__port=1`` sets mqtt.port) or removed (value ``...``)."""
    data = copy.deepcopy(MINIMAL)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is ...:
            node.pop(last, None)
        else:
            node[last] = value
    return data


def _error(data: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(data, sort_keys=False))
    return info.value


def test_minimal_config_fills_defaults() -> None:
    config = parse_config(yaml.safe_dump(MINIMAL))
    assert config.mqtt.host == "localhost" and config.mqtt.port == 1883
    assert config.mqtt.client_id == f"inspect-agent-{config.device_id}"
    assert config.device_id and "/" not in config.device_id
    camera = config.cameras["line1"]
    assert camera.trigger.mode == "presence"
    assert camera.decision == config.decision == config.decision_for("line1")
    assert broker_settings(config).max_queued == 1000
    tuned = parse_config(yaml.safe_dump({**MINIMAL, "mqtt": {"max_queued": 50}}))
    assert broker_settings(tuned).max_queued == 50  # reaches paho's in-memory queue bound


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"colour": "red"}, "colour", "unknown key (allowed: device_id, mqtt"),  # unknown top-level key
        ({"mqtt__hots": "x"}, "mqtt.hots", "did you mean 'host'?"),  # unknown nested key, with a guess
        ({"cameras__line1__trigger__mod": "x"}, "cameras.line1.trigger.mod", "unknown key"),  # deep unknown
        ({"mqtt__port": "many"}, "mqtt.port", "must be a valid integer"),  # wrong type
        ({"mqtt__port": 70000}, "mqtt.port", "less than or equal to 65535"),  # out of range
        ({"mqtt__port": 0}, "mqtt.port", "greater than or equal to 1"),  # out of range, low side
        ({"mqtt": "localhost"}, "mqtt", "must be a mapping"),  # section given as a scalar
        ({"cameras__line1__trigger": {"mode": "sometimes"}}, "cameras.line1.trigger.mode", "must be one of"),
        ({"cameras__line1__roi": {"width": -5, "height": 10}}, "cameras.line1.roi.width", "greater than 0"),
        ({"cameras__line1__roi": {"x": -1, "width": 5, "height": 5}}, "cameras.line1.roi.x", "greater than"),
        ({"cameras__line1__roi": {"width": 5}}, "cameras.line1.roi.height", "required key is missing"),
        ({"mqtt__tls": {"cert_file": "c.pem"}}, "mqtt.tls.key_file", "required when cert_file"),  # no key
        ({"mqtt__tls": {"key_file": "k.pem"}}, "mqtt.tls.cert_file", "required when key_file"),  # no cert
        ({"mqtt__username": "u", "mqtt__password": "pw"}, "mqtt.password", "in clear"),  # plain password
        (
            {"mqtt__username": "u", "mqtt__password": {"env": "A", "file": "b"}},
            "mqtt.password",
            "exactly one",
        ),
        ({"mqtt__password": {"env": "A"}}, "mqtt.username", "required when password"),  # password alone
        ({"cameras": {"line 1": {"source": "a.avi"}}}, "cameras.line 1", "invalid key"),  # bad camera id
        ({"cameras": {}}, "cameras", "must not be empty"),  # no camera
        ({"cameras": ...}, "cameras", "at least one camera, or a sensor group"),  # nothing to inspect
        ({"cameras__line1__source": ...}, "cameras.line1.source", "required key is missing"),
        ({"cameras__line1__source": "ftp://cam/x"}, "cameras.line1.source", "unsupported URL scheme"),
        ({"cameras__line1__fourcc": "MJPEG"}, "cameras.line1.fourcc", "4 ASCII characters"),
        ({"cameras__line1__reconnect_min_s": 60}, "cameras.line1.reconnect_min_s", "must not exceed"),
        ({"cameras__line1__reduce": 3}, "cameras.line1.reduce", "must be one of 1, 2, 4, 8"),
        (
            {"cameras__line1__source": "0", "cameras__line1__reduce": 2},
            "cameras.line1.reduce",
            "not to a device",
        ),
        ({"mqtt__prefix": "inspect/#"}, "mqtt.prefix", "wildcards"),  # '#' in the prefix
        ({"mqtt__prefix": "/inspect"}, "mqtt.prefix", "start or end with '/'"),
        ({"mqtt__qos_events": 3}, "mqtt.qos_events", "must be one of 0, 1, 2"),
        ({"mqtt__max_queued": -1}, "mqtt.max_queued", "greater than or equal to 0"),
        ({"device_id": "line/1"}, "device_id", "letters, digits"),  # would break MQTT topics
        ({"decision__sensitivity": 1.5}, "decision.sensitivity", "less than or equal to 1"),
        ({"decision__thresholds": {"scratch": -0.1}}, "decision.thresholds.scratch", "greater than or equal"),
        ({"decision__min_consecutive": 0}, "decision.min_consecutive", "greater than or equal to 1"),
        ({"cameras__line1__decision": {"cooldown_s": -1}}, "cameras.line1.decision.cooldown_s", "greater"),
        ({"images__max_bytes": "12XB"}, "images.max_bytes", "a size like 500MB"),  # unknown unit
        ({"images__jpeg_quality": 101}, "images.jpeg_quality", "less than or equal to 100"),
        ({"model__threads": 0}, "model.threads", "greater than or equal to 1"),
        ({"logging__level": "verbose"}, "logging.level", "must be one of DEBUG, INFO, WARNING, ERROR"),
    ],
)
def test_bad_config_names_the_key_path(changes: dict[str, Any], path: str, words: str) -> None:
    error = _error(_config(**changes))
    assert error.status == ExitStatus.CONFIG
    assert [problem.path for problem in error.problems] == [path], str(error)
    assert words in error.problems[0].message, str(error)
    assert f"{path}: " in str(error)


def test_error_line_shows_value_and_line() -> None:
    text = "model: {path: m.tflite}\ncameras:\n  line1:\n    source: a.avi\n    trigger:\n"
    text += "      mode: sometimes\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "cfg.yaml")
    assert str(info.value) == (
        "cfg.yaml: cameras.line1.trigger.mode: must be one of continuous, interval, command, presence "
        "(got 'sometimes'; line 6)"
    )
    assert info.value.problems[0].line == 6


def test_every_problem_is_listed_in_file_order() -> None:
    text = "mqtt:\n  port: 0\nmodel: {path: m.tflite, thread: 2}\n"
    text += "cameras: {a: {source: x}}\nlogging: {level: x}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert [(p.path, p.line) for p in info.value.problems] == [
        ("mqtt.port", 2),
        ("model.thread", 3),
        ("logging.level", 5),
    ]
    assert len(str(info.value).splitlines()) == 4  # a header, then one line per problem


def test_duplicate_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"mqtt.port: duplicate key \(line 3\)"):
        parse_config("mqtt:\n  port: 1883\n  port: 1884\ncameras: {a: {source: x}}\n")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("cameras: [a\n", "invalid YAML"),  # unclosed flow sequence
        ("a: b: c\n", "line 1, column 5"),  # mapping value not allowed here
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("just text\n", "top level must be a mapping"),
        ("a: 1\n---\nb: 2\n", "invalid YAML"),  # two documents
        ("a: !!python/object:os.system x\n", "invalid YAML"),  # unsafe tag refused
    ],
)
def test_unusable_yaml(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        parse_config(text, "cfg.yaml")
    assert info.value.status == ExitStatus.CONFIG
    assert len(info.value.problems) == 1
    assert str(info.value).startswith("cfg.yaml: ") and "\n" not in str(info.value)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found") as info:
        load_config(tmp_path / "nope.yaml")
    assert info.value.status == ExitStatus.NO_INPUT
    with pytest.raises(ConfigError, match="is a directory") as info:
        load_config(tmp_path)
    assert info.value.status == ExitStatus.NO_INPUT
    (tmp_path / "latin1.yaml").write_bytes(b"device_id: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        load_config(tmp_path / "latin1.yaml")
    assert info.value.status == ExitStatus.CONFIG


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, monkeypatch: Any) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    data = _config(
        images={"dir": "imgs"},
        mqtt={"username": "u", "password": {"file": "pw.txt"}, "tls": {"ca_file": "/abs/ca.pem"}},
    )
    data["cameras"].update(
        {"usb": {"source": 0}, "cam": {"source": "rtsp://cam/1"}, "dev": {"source": "/dev/video2"}}
    )
    (folder / "config.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("etc/config.yaml"))
    assert config.model.path == folder / "models" / "demo.tflite"
    assert config.images.dir == folder / "imgs"
    assert config.cameras["line1"].source == str(folder / "line.avi")
    assert [config.cameras[c].source for c in ("usb", "cam", "dev")] == ["0", "rtsp://cam/1", "/dev/video2"]
    assert config.mqtt.tls is not None and config.mqtt.tls.ca_file == Path("/abs/ca.pem")
    assert config.mqtt.password is not None and config.mqtt.password.file == folder / "pw.txt"
    # parse_config without base_dir leaves paths as written
    assert parse_config(yaml.safe_dump(MINIMAL)).model.path == Path("models/demo.tflite")


def test_secrets_from_env_file_and_credential(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("MQTT_PW", SECRET)
    assert resolve_secret(SecretRef(env="MQTT_PW")) == SECRET
    (tmp_path / "pw").write_text(SECRET + "\n")
    assert resolve_secret(SecretRef(file=tmp_path / "pw")) == SECRET  # trailing newline dropped
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "mqtt").write_text(SECRET)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    assert resolve_secret(SecretRef(credential="mqtt")) == SECRET


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        (SecretRef(env="NOT_SET_ANYWHERE"), "environment variable NOT_SET_ANYWHERE is not set"),
        (SecretRef(file=Path("/nonexistent/pw")), "cannot read secret file /nonexistent/pw"),
        (SecretRef(credential="mqtt"), "$CREDENTIALS_DIRECTORY is not set"),
    ],
)
def test_missing_secret_names_its_source(ref: SecretRef, words: str, monkeypatch: Any) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError) as info:
        resolve_secret(ref, "mqtt.password")
    assert words in str(info.value)
    assert info.value.problems[0].path == "mqtt.password"


def test_secret_values_never_leak(tmp_path: Path, monkeypatch: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    # a plain-text password is rejected without echoing it
    error = _error(_config(mqtt={"username": "u", "password": SECRET}))
    assert SECRET not in str(error) and "<redacted>" in str(error)
    assert all(SECRET not in str(problem.value) for problem in error.problems)
    # ... as is a whole mqtt section written as one string, or a mistyped password key
    assert SECRET not in str(_error(_config(mqtt=f"user:{SECRET}@host")))
    assert SECRET not in str(_error(_config(mqtt={"username": "u", "passwd": SECRET})))
    # a valid config holds only the reference; resolving it logs nothing of the value
    (tmp_path / "pw").write_text(SECRET)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    data = _config(mqtt={"username": "u", "password": {"credential": "pw"}})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data))
    config = load_config(tmp_path / "config.yaml")
    assert config.mqtt.password is not None
    assert resolve_secret(config.mqtt.password) == SECRET
    out = io.StringIO()
    assert check_config_main(tmp_path / "config.yaml", out) == 0
    for text in (repr(config), str(config), config.model_dump_json(), caplog.text, out.getvalue()):
        assert SECRET not in text


def test_empty_secret_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        resolve_secret(SecretRef(file=tmp_path / "pw"))


def test_camera_decision_overrides_merge_over_the_top_level() -> None:
    data = _config(decision={"sensitivity": 0.7, "thresholds": {"defect": 0.4, "scratch": 0.3}})
    data["cameras"]["line1"]["decision"] = {"cooldown_s": 5, "thresholds": {"scratch": 0.9}}
    data["cameras"]["line2"] = {"source": "b.avi"}
    config = parse_config(yaml.safe_dump(data))
    line1 = config.decision_for("line1")
    assert (line1.sensitivity, line1.cooldown_s) == (0.7, 5)
    assert line1.thresholds == {"defect": 0.4, "scratch": 0.9}
    assert config.decision_for("line2") == config.decision


def test_sizes_and_scalars_are_read_kindly() -> None:
    data = _config(images={"max_bytes": "2GiB"}, logging={"level": "debug"}, device_id=42)
    data["cameras"]["line1"]["source"] = 0
    config = parse_config(yaml.safe_dump(data))
    assert config.images.max_bytes == 2 * 2**30
    assert config.logging.level == "DEBUG"
    assert config.device_id == "42"
    assert config.cameras["line1"].source == "0" and config.cameras["line1"].source_kind == "device"
    assert (
        parse_config(yaml.safe_dump(_config(images={"max_bytes": "500MB"}))).images.max_bytes == 500_000_000
    )


def test_hash_is_stable_across_key_order_and_changes_with_content() -> None:
    forward = _config(mqtt={"host": "h", "port": 1884}, decision={"thresholds": {"a": 0.1, "b": 0.2}})
    backward = {key: forward[key] for key in reversed(list(forward))}
    backward["mqtt"] = {"port": 1884, "host": "h"}
    backward["decision"] = {"thresholds": {"b": 0.2, "a": 0.1}}
    first, second = (parse_config(yaml.safe_dump(d, sort_keys=False)) for d in (forward, backward))
    assert config_hash(first) == config_hash(second)
    assert len(config_hash(first)) == 12
    assert config_hash(parse_config(yaml.safe_dump(_config(mqtt={"port": 1885})))) != config_hash(first)


def test_loading_is_pure(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    first = load_config(path)
    assert load_config(path) == first and load_config(path) is not first
    with pytest.raises(Exception):  # noqa: B017 - frozen: a loaded config cannot be changed in place
        first.mqtt.port = 1


def test_check_config_main_reports(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(yaml.safe_dump(MINIMAL))
    bad.write_text("model: {path: m.tflite}\ncameras:\n  line1: {source: x, fps: -1}\n")
    out = io.StringIO()
    assert check_config_main(good, out) == ExitStatus.OK
    assert out.getvalue().startswith(f"OK: {good} (1 camera, config hash ")
    assert "warning: model.path:" in out.getvalue()  # the model file is not there
    out = io.StringIO()
    assert check_config_main(bad, out) == ExitStatus.CONFIG
    lines = out.getvalue().splitlines()
    assert lines[0] == f"{bad}: 1 problem"
    assert lines[1].split() == ["Line", "Key", "Value", "Message"]
    assert lines[2].split()[:3] == ["3", "cameras.line1.fps", "-1"]
    assert check_config_main(tmp_path / "missing.yaml", io.StringIO()) == ExitStatus.NO_INPUT


@pytest.mark.parametrize("name", ["config.minimal.yaml", "config.full.yaml"])
def test_examples_parse(name: str) -> None:
    config = load_config(ROOT / "examples" / name)
    assert config.cameras


def _leaf_paths(model: type[Any], prefix: str) -> set[str]:
    from agent.config.errors import _is_model, _unwrap

    paths = set()
    for name, field in model.model_fields.items():
        sub = _unwrap(field.annotation)
        if name == "cameras":
            paths |= _leaf_paths(sub.__args__[1], f"{prefix}cameras.*.")
        elif _is_model(sub) and sub is not SecretRef and f"{prefix}{name}" != "cameras.*.decision":
            paths |= _leaf_paths(sub, f"{prefix}{name}.")
        else:
            paths.add(f"{prefix}{name}")
    return paths


def _written_paths(data: Any, prefix: str = "") -> set[str]:
    paths = {prefix.rstrip(".")} if prefix else set()
    if isinstance(data, dict) and not prefix.endswith(("password.", "thresholds.")):
        for key, value in data.items():
            part = "*" if prefix == "cameras." else str(key)
            paths |= _written_paths(value, f"{prefix}{part}.")
    return paths


def test_full_example_shows_every_option() -> None:
    written = _written_paths(yaml.safe_load((ROOT / "examples" / "config.full.yaml").read_text()))
    missing = _leaf_paths(AgentConfig, "") - written
    assert not missing, f"examples/config.full.yaml lacks {sorted(missing)}"


def test_reference_and_schema_are_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_config_reference", ROOT / "scripts" / "gen_config_reference.py"
    )
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.main(["--check"]) == 0, "run python scripts/gen_config_reference.py"


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12))
_keys = st.one_of(
    st.sampled_from(["model", "cameras", "mqtt", "path", "source", "tls", "password", "env", "roi", "mode"]),
    st.text(max_size=8),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(_keys, children, max_size=5)),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=6), st.booleans())
def test_any_yaml_gives_a_config_or_a_config_error(data: dict[str, Any], with_minimal: bool) -> None:
    document = {**MINIMAL, **data} if with_minimal else data
    try:
        text = yaml.safe_dump(document)
    except yaml.YAMLError:
        return
    try:
        config = parse_config(text)
    except ConfigError as exc:
        assert exc.problems and str(exc)
    else:
        assert isinstance(config, AgentConfig)
        config_hash(config)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80))
def test_any_text_gives_a_config_or_a_config_error(text: str) -> None:
    try:
        parse_config(text)
    except ConfigError as exc:
        assert exc.problems
