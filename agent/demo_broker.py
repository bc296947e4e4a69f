"""A throwaway MQTT broker on 127.0.0.1 for the demo: mosquitto when installed, else amqtt (pure Python)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from agent.status import ExitStatus, InspectError

__all__ = ["LocalBroker", "find_mosquitto", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_mosquitto() -> str | None:
    """mosquitto lives in /usr/sbin on Debian, often not on a user's PATH."""
    for name in ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _amqtt_config(port: int, workdir: Path) -> Path:
    path = workdir / "amqtt.yaml"
    path.write_text(
        f"listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{port}\n"
        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
    )
    return path


class LocalBroker:
    """``with LocalBroker(workdir) as broker: ... broker.port``; stopped on exit."""

    def __init__(self, workdir: Path, prefer: str | None = None) -> None:
        self.workdir = workdir
        self.prefer = prefer  # "amqtt" to skip mosquitto (tests of the fallback)
        self.host, self.port = "127.0.0.1", free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.kind = ""

    def start(self, timeout: float = 10.0) -> LocalBroker:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "broker.log").open("wb")
        exe = find_mosquitto() if self.prefer != "amqtt" else None
        amqtt = _amqtt()
        if exe is not None:
            conf = self.workdir / "mosquitto.conf"
            user = "root" if _is_root() else ""
            conf.write_text(
                f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n"
                + (f"user {user}\n" if user else "")
            )
            cmd, self.kind = [exe, "-c", str(conf)], "mosquitto"
        elif amqtt is not None:
            cmd, self.kind = [amqtt, "-c", str(_amqtt_config(self.port, self.workdir))], "amqtt"
        else:
            raise InspectError(
                "no MQTT broker: install mosquitto (sudo apt-get install mosquitto) "
                "or amqtt (pip install amqtt)",
                ExitStatus.UNAVAILABLE,
            )
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise InspectError(
                    f"{self.kind} exited at start (code {self.proc.returncode}); "
                    f"see {self.workdir / 'broker.log'}",
                    ExitStatus.UNAVAILABLE,
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        message = f"{self.kind} did not accept connections within {timeout:.0f} s"
        raise InspectError(message, ExitStatus.UNAVAILABLE)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


def _amqtt() -> str | None:
    """amqtt's console script: beside this Python (a venv) or on PATH."""
    beside = Path(sys.executable).with_name("amqtt")
    return str(beside) if beside.is_file() else shutil.which("amqtt")
