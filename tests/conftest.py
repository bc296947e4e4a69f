"""Shared fixtures: a real mosquitto broker (see tests/broker.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker import Mosquitto, find_mosquitto, have_openssl
from tests.toolchain_run import toolchain  # noqa: F401  (a session fixture several modules share)

BROKER_USERS = {"agent": "s3cret-agent", "viewer": "s3cret-viewer"}


def _need_mosquitto() -> None:
    if find_mosquitto() is None:
        message = "mosquitto not installed (apt-get install mosquitto)"
        if os.environ.get("CI"):
            pytest.fail(message)  # .ci/run installs it: missing in CI is a bug, not a skip
        pytest.skip(message)


def _run(broker: Mosquitto) -> Iterator[Mosquitto]:
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """Anonymous broker on a free 127.0.0.1 port; ``stop()``/``start()`` for an outage on the same port."""
    _need_mosquitto()
    yield from _run(Mosquitto(tmp_path))


@pytest.fixture
def mosquitto_persistent(tmp_path: Path) -> Iterator[Mosquitto]:
    """Like ``mosquitto``, but sessions and their queued QoS 1 messages survive ``stop()``/``start()``."""
    _need_mosquitto()
    yield from _run(Mosquitto(tmp_path, persistence=True))


@pytest.fixture
def mosquitto_auth(tmp_path: Path) -> Iterator[Mosquitto]:
    """No anonymous access; the users and passwords are ``BROKER_USERS``."""
    _need_mosquitto()
    yield from _run(Mosquitto(tmp_path, users=BROKER_USERS))


@pytest.fixture
def mosquitto_tls(tmp_path: Path) -> Iterator[Mosquitto]:
    """TLS only, server certificate for 127.0.0.1 signed by ``broker.ca_file``; client certificate required
    (``broker.client_cert`` = (cert, key))."""
    _need_mosquitto()
    if not have_openssl():
        pytest.skip("openssl CLI not installed: cannot make test certificates")
    yield from _run(Mosquitto(tmp_path, tls=True, require_certificate=True))
