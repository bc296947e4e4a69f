"""sd_notify against a real datagram socket standing in for systemd's NOTIFY_SOCKET."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.sdnotify import Notifier
from tests.broker import Mosquitto


@pytest.fixture
def systemd_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()


def _messages(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines())


def test_ready_status_watchdog_stopping_arrive_as_datagrams(
    systemd_socket: tuple[socket.socket, str],
) -> None:
    sock, path = systemd_socket
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"})
    assert notifier.enabled and notifier.watchdog_interval_s == 5.0
    assert notifier.ready("1 camera online")
    assert _messages(sock) == {"READY": "1", "STATUS": "1 camera online", "MAINPID": str(os.getpid())}
    assert notifier.watchdog()
    assert _messages(sock) == {"WATCHDOG": "1"}
    assert notifier.status("12.5 fps")
    assert _messages(sock) == {"STATUS": "12.5 fps"}
    assert notifier.stopping()
    assert _messages(sock)["STOPPING"] == "1"
    notifier.close()


def test_abstract_socket_address(tmp_path: Path) -> None:
    name = f"inspect-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        assert Notifier(f"@{name}").watchdog()
        assert _messages(sock) == {"WATCHDOG": "1"}
    finally:
        sock.close()


@pytest.mark.parametrize(
    "environ",
    [
        {},  # a terminal: nothing to notify
        {"NOTIFY_SOCKET": ""},  # set but empty
    ],
)
def test_outside_systemd_every_call_is_a_no_op(environ: dict[str, str]) -> None:
    notifier = Notifier.from_environment(environ)
    assert not notifier.enabled and notifier.watchdog_interval_s is None
    assert not notifier.ready("x") and not notifier.watchdog() and not notifier.stopping()


def test_watchdog_for_another_pid_is_ignored(systemd_socket: tuple[socket.socket, str]) -> None:
    _, path = systemd_socket
    notifier = Notifier.from_environment(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    )
    assert notifier.watchdog_interval_s is None


def test_a_vanished_socket_is_logged_once_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(str(tmp_path / "gone"))
    assert not notifier.watchdog() and not notifier.watchdog()
    assert len([r for r in caplog.records if "sd_notify" in r.getMessage()]) == 1


def test_the_agent_notifies_ready_watchdog_and_stopping_and_reloads_on_sighup(
    systemd_socket: tuple[socket.socket, str], mosquitto: Mosquitto, tmp_path: Path
) -> None:
    import signal

    from tests.agent_harness import AgentProcess, agent_config
    from tests.broker import Subscriber
    from tools.synth_video import LineSpec, generate_video

    sock, path = systemd_socket
    generate_video(tmp_path / "line", LineSpec(width=320, height=180, duration=3, seed=5), progress=False)
    config = agent_config(
        tmp_path / "agent.yaml", mosquitto, str(tmp_path / "line/line.avi"), camera={"loop": True}
    )
    sub = Subscriber(mosquitto, "inspect/test-dev/cmd/reload/reply")
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}  # pings every 0.5 s
    with AgentProcess(config, env=env) as agent:
        seen: list[dict[str, str]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum("WATCHDOG" in m for m in seen) < 3:
            seen.append(_messages(sock))
        assert seen[0]["READY"] == "1" and seen[0]["MAINPID"] == str(agent.proc.pid), seen
        assert sum("WATCHDOG" in m for m in seen) >= 3, seen
        agent.proc.send_signal(signal.SIGHUP)
        reply = sub.wait_for("inspect/test-dev/cmd/reload/reply", 1, timeout=10)[0]
        assert b'"ok":true' in reply.payload.replace(b" ", b"")
        assert agent.terminate() == 0
    rest = []
    with contextlib.suppress(TimeoutError):
        while True:
            rest.append(_messages(sock))
    assert any(m.get("STOPPING") == "1" for m in rest), rest
