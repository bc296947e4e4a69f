"""MqttPublisher against a real mosquitto: availability, state, commands, acks, outages, auth, TLS."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agent.commands import make_reply
from agent.messages import (
    CameraState,
    CameraStats,
    Event,
    FrameInfo,
    ImageRef,
    LatencyStat,
    ModelInfo,
    ModelRef,
    MqttStats,
    OutboxStats,
    ProcessStats,
    Region,
    Result,
    State,
    Stats,
    iso_ts,
    new_event_id,
)
from agent.publisher import BrokerSettings, MqttPublisher
from tests.broker import Mosquitto, Subscriber
from tests.conftest import BROKER_USERS

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "docs" / "schemas" / "mqtt"
SHA = "ab" * 32
DEV = "dev1"
BASE = f"inspect/{DEV}"


def until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def validate(kind: str, payload: bytes) -> dict[str, Any]:
    data = json.loads(payload)
    jsonschema.validate(data, json.loads((SCHEMAS / f"{kind}.schema.json").read_text()))
    return data


def a_state(paused: bool = False) -> State:
    now = time.time()
    return State(
        version="0.1.0",
        device=DEV,
        started_at=iso_ts(now - 5),
        uptime_s=5.0,
        model=ModelInfo(
            name="m",
            version="1",
            sha256=SHA,
            labels=["good", "scratch"],
            quantization="int8",
            interpreter="ai_edge_litert 1.4.0",
        ),
        config_hash="cafe",
        cameras={"cam1": CameraState(status="online", source="/dev/video0", last_frame_at=iso_ts(now))},
        paused=paused,
        updated_at=iso_ts(now),
    )


def a_result(seq: int) -> Result:
    return Result(
        ts=iso_ts(time.time()),
        seq=seq,
        camera="cam1",
        verdict="NG",
        label="scratch",
        score=0.9,
        defect_score=0.9,
        threshold=0.5,
        probabilities={"good": 0.1, "scratch": 0.9},
        latency_ms=12.5,
        model_sha256=SHA[:12],
    )


def an_event(seq: int) -> Event:
    now = time.time()
    event_id = new_event_id(DEV, "cam1", seq, now)
    image = ImageRef(
        kind="annotated", topic=f"{BASE}/cam1/image/{event_id}", width=64, height=48, bytes=3, sha256=SHA
    )
    return Event(
        event_id=event_id,
        ts=iso_ts(now),
        seq=seq,
        device=DEV,
        camera="cam1",
        verdict="NG",
        label="scratch",
        score=0.9,
        defect_score=0.9,
        threshold=0.5,
        regions=[Region(box=[1, 2, 3, 4], score=0.8, area=12)],
        model=ModelRef(name="m", version="1", sha256=SHA),
        images=[image],
        frame=FrameInfo(width=64, height=48, index=seq),
    )


def some_stats() -> Stats:
    return Stats(
        ts=iso_ts(time.time()),
        device=DEV,
        interval_s=10.0,
        cameras={
            "cam1": CameraStats(fps_in=30, fps_processed=10, frames_dropped=40, parts=100, ng=3, reconnects=0)
        },
        latency_ms={"invoke": LatencyStat(p50=5.0, p99=9.0, count=100)},
        outbox=OutboxStats(depth=0, evicted=0),
        mqtt=MqttStats(reconnects=1),
        process=ProcessStats(cpu_percent=35.0, rss_mb=120.0, temp_c=None),
    )


class Harness:
    """A publisher plus what its callbacks saw."""

    def __init__(self, broker: Mosquitto, **overrides: Any) -> None:
        options: dict[str, Any] = dict(
            host=broker.host,
            port=broker.port,
            client_id=f"agent-{uuid.uuid4().hex[:8]}",
            keepalive_s=5,
            reconnect_min_s=0.05,
            reconnect_max_s=0.3,
        )
        options.update(overrides)
        self.commands: list[tuple[str, bytes]] = []
        self.acked: list[int] = []
        self.mids: set[int] = set()
        self.lock = threading.Lock()  # the caller lock an outbox would hold (see publisher.py)
        self.pub = MqttPublisher(BrokerSettings(**options), "inspect", DEV, self._command, self._acked)

    def _command(self, name: str, payload: bytes) -> None:
        self.commands.append((name, payload))

    def _acked(self, mid: int) -> None:
        with self.lock:
            assert mid in self.mids, f"ack for mid {mid} before the caller recorded it"
            self.acked.append(mid)

    def event(self, seq: int) -> int | None:
        with self.lock:
            mid = self.pub.publish_event("cam1", an_event(seq))
            if mid is not None:
                self.mids.add(mid)
        return mid


@pytest.fixture
def harness() -> Iterator[Callable[..., Harness]]:
    """``harness(broker, **BrokerSettings overrides)``: a connecting publisher, stopped at teardown."""
    made: list[Harness] = []

    def make(broker: Mosquitto, connect: bool = True, **overrides: Any) -> Harness:
        h = Harness(broker, **overrides)
        made.append(h)
        if connect:
            h.pub.connect()
        return h

    yield make
    for h in made:
        h.pub.stop(timeout=1.0)


def test_online_and_state_retained_and_republished_after_broker_restart(mosquitto, harness):
    h = harness(mosquitto)
    assert h.pub.wait_connected(5)
    h.pub.publish_state(a_state())
    assert until(lambda: h.pub.counters().unacked == 0)
    sub = Subscriber(mosquitto, f"{BASE}/#")
    online, state = sub.wait_for(f"{BASE}/available")[0], sub.wait_for(f"{BASE}/state")[0]
    assert (online.payload, online.retain) == (b"online", True)
    assert state.retain and validate("state", state.payload)["cameras"]["cam1"]["status"] == "online"
    sub.close()

    mosquitto.stop()  # no persistence: the broker forgets every retained message
    assert until(lambda: not h.pub.connected)
    mosquitto.start()
    assert until(lambda: h.pub.counters().reconnects == 1 and h.pub.counters().unacked == 0)
    sub = Subscriber(mosquitto, f"{BASE}/#")
    again = sub.wait_for(f"{BASE}/state")[0]
    assert again.retain and again.payload == state.payload
    assert sub.wait_for(f"{BASE}/available")[0].payload == b"online"
    sub.close()


CHILD = """
import sys, time
from agent.publisher import BrokerSettings, MqttPublisher
settings = BrokerSettings(host=sys.argv[1], port=int(sys.argv[2]), keepalive_s=60)
pub = MqttPublisher(settings, "inspect", "dev1", lambda name, payload: None)
pub.connect()
time.sleep(30)
"""


def test_last_will_offline_when_the_process_is_killed(mosquitto):
    sub = Subscriber(mosquitto, f"{BASE}/available")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mosquitto.host, str(mosquitto.port)], env=env, cwd=ROOT
    )
    try:
        assert sub.wait_for(f"{BASE}/available", 1, timeout=10)[0].payload == b"online"
        child.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker must publish the will
        child.wait(5)
        offline = sub.wait_for(f"{BASE}/available", 2, timeout=5)[1]
        assert offline.payload == b"offline"
        late = Subscriber(mosquitto, f"{BASE}/available")  # and it is retained
        assert late.wait_for(f"{BASE}/available")[0].payload == b"offline"
        late.close()
    finally:
        child.kill()
        child.wait(5)
        sub.close()


def test_clean_stop_publishes_offline_once_and_no_last_will(mosquitto, harness):
    sub = Subscriber(mosquitto, f"{BASE}/available")
    h = harness(mosquitto)
    sub.wait_for(f"{BASE}/available", 1)
    h.pub.stop(timeout=2)
    assert [m.payload for m in sub.wait_for(f"{BASE}/available", 2)] == [b"online", b"offline"]
    time.sleep(0.3)  # a last will would arrive now as a second "offline"
    assert [m.payload for m in sub.matching(f"{BASE}/available")] == [b"online", b"offline"]
    assert not h.pub.connected
    sub.close()


def test_commands_are_received_also_after_a_broker_restart(mosquitto, harness):
    h = harness(mosquitto)
    assert h.pub.wait_connected(5)
    sub = Subscriber(mosquitto, f"{BASE}/cmd/#")

    def send_until_received(payload: bytes) -> None:
        deadline = time.monotonic() + 5
        while ("pause", payload) not in h.commands and time.monotonic() < deadline:
            sub.publish(f"{BASE}/cmd/pause", payload)  # retried: the publisher may still be (re)subscribing
            until(lambda: ("pause", payload) in h.commands, 0.3)
        assert ("pause", payload) in h.commands

    send_until_received(b'{"request_id": "r1"}')
    sub.publish(f"{BASE}/cmd/pause/reply", b"{}")  # replies are not commands
    h.pub.reply("pause", make_reply("pause", "r1"))
    reply = sub.wait_for(f"{BASE}/cmd/pause/reply", 2)[1]
    assert validate("reply", reply.payload)["request_id"] == "r1"

    mosquitto.stop()
    assert until(lambda: not h.pub.connected)
    mosquitto.start()
    assert sub.wait_subscribed(5)
    send_until_received(b"")
    assert all(name == "pause" for name, _ in h.commands)


def test_on_published_reports_every_event_mid_once(mosquitto, harness):
    h = harness(mosquitto)
    assert h.pub.wait_connected(5)
    sub = Subscriber(mosquitto, f"{BASE}/+/event")
    mids = [h.event(seq) for seq in range(50)]
    assert None not in mids and len(set(mids)) == 50
    assert until(lambda: len(h.acked) == 50)
    assert sorted(h.acked) == sorted(mids)  # type: ignore[type-var]
    received = sub.wait_for(f"{BASE}/cam1/event", 50)
    assert [validate("event", m.payload)["seq"] for m in received] == list(range(50))
    assert all(m.qos == 1 for m in received)
    sub.close()


def test_an_ack_arriving_before_publish_returns_is_reported_after_it(mosquitto, harness):
    h = harness(mosquitto)
    assert h.pub.wait_connected(5)
    client = h.pub._client
    real_publish = client.publish

    def racing_publish(*args: Any, **kwargs: Any) -> Any:
        info = real_publish(*args, **kwargs)
        h.pub._on_publish(client, None, info.mid, None, None)  # the PUBACK wins the race
        time.sleep(0.05)  # and the ack thread had every chance to run
        return info

    client.publish = racing_publish  # type: ignore[method-assign]
    mids = [h.event(seq) for seq in range(5)]
    assert until(lambda: len(h.acked) == 5)
    time.sleep(0.2)  # the real PUBACKs arrive too: still once per mid
    assert sorted(h.acked) == sorted(mids)  # type: ignore[type-var]


def test_events_published_while_the_broker_is_down_arrive_in_order_after(mosquitto_persistent, harness):
    broker = mosquitto_persistent  # the subscriber's session (and its queue) survives the restart
    sub = Subscriber(broker, f"{BASE}/+/event", client_id="historian", clean_session=False)
    h = harness(broker)
    assert h.pub.wait_connected(5) and until(lambda: h.pub.counters().unacked == 0)  # "online" acked
    broker.stop()
    assert until(lambda: not h.pub.connected)
    mids = [h.event(seq) for seq in range(10)]
    assert None not in mids and h.pub.counters().unacked == 10
    broker.start()
    received = sub.wait_for(f"{BASE}/cam1/event", 10, timeout=10)
    seqs = [json.loads(m.payload)["seq"] for m in received]
    assert list(dict.fromkeys(seqs)) == list(range(10))  # in order; a QoS 1 re-send may duplicate
    assert until(lambda: sorted(h.acked) == sorted(mids))  # type: ignore[type-var]
    sub.close()


def test_while_down_qos0_is_dropped_and_the_queue_is_bounded_with_counts(mosquitto, harness, caplog):
    mosquitto.stop()
    h = harness(mosquitto, max_queued=3)
    assert not h.pub.wait_connected(0.2)
    h.pub.publish_result("cam1", a_result(0))  # QoS 0 while offline: dropped, counted
    assert [h.event(seq) is not None for seq in range(5)] == [True, True, True, False, False]
    counters = h.pub.counters()
    assert (counters.publish_failed, counters.unacked, counters.published) == (3, 3, 0)
    assert "dropped" in caplog.text
    mosquitto.start()
    assert h.pub.wait_connected(5)
    assert until(lambda: h.pub.counters().unacked == 0 and len(h.acked) == 3)


def test_connect_returns_at_once_when_the_broker_is_down(mosquitto, harness, caplog):
    mosquitto.stop()
    caplog.set_level(logging.INFO, "agent.publisher")
    started = time.monotonic()
    h = harness(mosquitto)
    assert time.monotonic() - started < 0.5 and not h.pub.connected
    time.sleep(0.5)
    assert caplog.text.count("unreachable") == 1  # once per transition, not per retry
    mosquitto.start()
    assert h.pub.wait_connected(5)


def test_username_and_password(mosquitto_auth, harness, caplog):
    caplog.set_level(logging.INFO, "agent.publisher")
    good = harness(mosquitto_auth, username="agent", password=BROKER_USERS["agent"])
    assert good.pub.wait_connected(5)
    bad = harness(mosquitto_auth, username="agent", password="wrong-password")
    assert not bad.pub.wait_connected(1.0)
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1 and "authori" in refused[0].lower(), refused
    assert "wrong-password" not in caplog.text and BROKER_USERS["agent"] not in caplog.text
    assert "wrong-password" not in repr(bad.pub.settings)
    assert good.pub.connected  # the refused one did not disturb anything


def test_tls_with_a_client_certificate(mosquitto_tls, harness):
    broker = mosquitto_tls
    assert broker.ca_file and broker.client_cert
    cert, key = broker.client_cert
    h = harness(broker, tls_ca_file=broker.ca_file, tls_cert_file=cert, tls_key_file=key)
    assert h.pub.wait_connected(5)
    sub = Subscriber(broker, f"{BASE}/available")
    assert sub.wait_for(f"{BASE}/available")[0].payload == b"online"
    sub.close()
    no_cert = harness(broker, tls_ca_file=broker.ca_file)  # the broker requires a client certificate
    assert not no_cert.pub.wait_connected(1.0)


def test_every_payload_matches_its_schema(mosquitto, harness):
    h = harness(mosquitto)
    sub = Subscriber(mosquitto, f"{BASE}/#")
    assert h.pub.wait_connected(5)
    h.pub.publish_state(a_state(paused=True))
    h.pub.publish_stats(some_stats())
    h.pub.publish_result("cam1", a_result(7))
    event = an_event(7)
    assert h.pub.publish_image("cam1", event.event_id, b"\xff\xd8\xff") is not None
    assert h.pub.publish_image("cam1", event.event_id, b"\xff\xd8\xff", raw=True) is not None
    h.pub.publish_event("cam1", event)
    h.pub.reply("set_threshold", make_reply("set_threshold", None, ok=False, error="field 'value': too big"))
    for kind, topic in [
        ("state", f"{BASE}/state"),
        ("stats", f"{BASE}/stats"),
        ("result", f"{BASE}/cam1/result"),
        ("event", f"{BASE}/cam1/event"),
        ("reply", f"{BASE}/cmd/set_threshold/reply"),
    ]:
        validate(kind, sub.wait_for(topic)[0].payload)
    images = sub.wait_for(f"{BASE}/cam1/image/#", 2)
    assert {m.topic for m in images} == {event.images[0].topic, event.images[0].topic + "/raw"}
    assert h.pub.counters().publish_failed == 0
    sub.close()
