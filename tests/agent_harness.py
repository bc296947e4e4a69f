"""Run the real agent (``python -m agent.cli run``) against a real broker and collect what it publishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.broker import Mosquitto, Received, Subscriber

ROOT = Path(__file__).resolve().parent.parent
DEMO_MODEL = ROOT / "models/demo/parts_int8.tflite"
SCHEMAS = ROOT / "docs/schemas/mqtt"

__all__ = ["DEMO_MODEL", "AgentProcess", "agent_config", "payloads", "validate"]


def agent_config(
    path: Path,
    broker: Mosquitto,
    source: str,
    *,
    model: Path = DEMO_MODEL,
    camera: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """A config file for one camera ``line1`` on ``source``; ``camera``/``extra`` override keys."""
    config: dict[str, Any] = {
        "device_id": "test-dev",
        "mqtt": {"host": broker.host, "port": broker.port, "stats_interval_s": 1, "reconnect_min_s": 0.2,
                 "reconnect_max_s": 1},
        "model": {"path": str(model), "threads": 1},
        "cameras": {"line1": {"source": source, **(camera or {})}},
        "images": {"dir": str(path.parent / "images"), "max_side": 480},
        **(extra or {}),
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class AgentProcess:
    """The agent in its own process, stderr to a log file; always killed at the end of a test."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = config.with_suffix(".log")
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.flush()

    def terminate(self, timeout: float = 10.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> AgentProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.kill()
        self._log.close()


@cache
def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())  # type: ignore[no-any-return]


def validate(kind: str, payload: dict[str, Any]) -> None:
    jsonschema.validate(payload, _schema(kind))


def payloads(sub: Subscriber, topic_filter: str, kind: str | None = None) -> list[dict[str, Any]]:
    """JSON payloads on ``topic_filter``, each validated against ``docs/schemas/mqtt/<kind>.schema.json``."""
    found = [json.loads(m.payload) for m in sub.matching(topic_filter)]
    for payload in found:
        if kind:
            validate(kind, payload)
    return found


def wait_until(predicate: Any, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def texts(messages: list[Received]) -> list[str]:
    return [m.payload.decode() for m in messages]
