"""The systemd unit passes ``systemd-analyze verify`` without warnings and keeps its hardening."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "inspect-agent.service"


def _directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze missing in CI")
        pytest.skip("systemd-analyze not installed")
    # verify checks that ExecStart's program exists: point it at this environment's inspect-agent.
    agent = Path(sys.executable).with_name("inspect-agent")
    assert agent.is_file(), agent
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/inspect-agent/bin/inspect-agent", str(agent)))
    done = subprocess.run(
        [tool, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),  # READY after the first frame
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "78"),  # a bad config does not restart-loop
        ("User", "inspect-agent"),  # a dedicated user, never root
        ("SupplementaryGroups", "video dialout"),  # cameras, serial sensors
        ("DeviceAllow", "char-video4linux rw"),
        ("DeviceAllow", "char-ttyUSB rw"),  # USB serial adapters
        ("DevicePolicy", "closed"),
        ("StateDirectory", "inspect-agent"),  # outbox, images
        ("ConfigurationDirectory", "inspect-agent"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("LoadCredential", "mqtt-password:/etc/inspect-agent/mqtt-password"),
    ],
)
def test_unit_keeps(key: str, value: str) -> None:
    assert value in _directives().get(key, []), f"{key}={value} missing from {UNIT}"


def test_watchdog_is_set() -> None:
    (watchdog,) = _directives()["WatchdogSec"]
    assert int(watchdog) > 0
