"""The outbox under faults, end to end: the real agent process, a real mosquitto, a generated line video on
which every frame is NG (continuous trigger, sensitivity 1), so events are plentiful.

1. The broker is stopped for ~3 s mid-run and restarted: every event the agent produced arrives, in order
   once de-duplicated by event_id, none missing.
2. The agent is SIGKILLed mid-run (broker down, so rows are waiting) and restarted with the same outbox:
   every message that was in the outbox file at the kill arrives, byte for byte.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from agent.demo_report import belt_roi
from tests.agent_harness import AgentProcess, agent_config, payloads, wait_until
from tests.broker import Mosquitto, Subscriber
from tools.synth_video import LineSpec, generate_video

BASE = "inspect/test-dev"


@pytest.fixture(scope="module")
def short_line(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("line")
    meta = generate_video(out, LineSpec(width=640, height=360, duration=6, seed=7, parts=("washer",)), False)
    meta["dir"] = out
    return meta


def _config(tmp_path: Path, broker: Mosquitto, line: dict[str, Any], outbox: Path) -> Path:
    roi = dict(zip(("x", "y", "width", "height"), belt_roi(line), strict=True))
    camera = {"loop": True, "realtime": True, "roi": roi, "trigger": {"mode": "continuous"}}
    extra = {"decision": {"sensitivity": 1.0}, "outbox": {"path": str(outbox)}}
    return agent_config(
        tmp_path / "agent.yaml", broker, str(line["dir"] / "line.avi"), camera=camera, extra=extra
    )


def _dedup(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    unique = []
    for event in events:
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            unique.append(event)
    return unique


def test_broker_outage_mid_run_loses_no_event(
    mosquitto_persistent: Mosquitto, short_line: dict[str, Any], tmp_path: Path
) -> None:
    broker = mosquitto_persistent
    # A persistent session: the broker keeps what arrives for us while we reconnect after its restart.
    sub = Subscriber(
        broker, f"{BASE}/line1/event", f"{BASE}/stats", client_id="outbox-sub", clean_session=False
    )
    config = _config(tmp_path, broker, short_line, tmp_path / "outbox.sqlite3")
    with AgentProcess(config) as agent:
        sub.wait_for(f"{BASE}/line1/event", 10, timeout=30)
        broker.stop()
        time.sleep(3.0)  # the agent keeps inspecting; events pile up in the outbox
        broker.start()
        assert sub.wait_subscribed(10)
        before = len(sub.matching(f"{BASE}/line1/event"))
        sub.wait_for(f"{BASE}/line1/event", before + 20, timeout=20)  # the backlog and new ones flow
        assert agent.terminate(timeout=15) == 0, agent.log()
    log = agent.log_path.read_text(errors="replace")
    assert "MQTT disconnected" in log, log
    # The final stats (published at shutdown, after the outbox was flushed) count every NG verdict; with
    # min_consecutive 1 and no cooldown each raised exactly one event.
    assert wait_until(lambda: bool(payloads(sub, f"{BASE}/stats")), 5)
    stats = payloads(sub, f"{BASE}/stats", "stats")[-1]
    produced = stats["cameras"]["line1"]["ng"]
    assert produced >= 30, stats
    assert wait_until(lambda: len(_dedup(payloads(sub, f"{BASE}/line1/event"))) >= produced, 10)
    events = _dedup(payloads(sub, f"{BASE}/line1/event", "event"))
    seqs = [e["seq"] for e in events]
    assert len(seqs) == produced, f"{produced} produced, {len(seqs)} distinct received"
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    assert stats["outbox"]["depth"] == 0 and stats["outbox"]["evicted"] == 0, stats
    sub.close()


def test_sigkill_mid_run_then_restart_delivers_every_persisted_message(
    mosquitto: Mosquitto, short_line: dict[str, Any], tmp_path: Path
) -> None:
    sub = Subscriber(mosquitto, f"{BASE}/line1/#")
    outbox = tmp_path / "outbox.sqlite3"
    config = _config(tmp_path, mosquitto, short_line, outbox)
    with AgentProcess(config) as agent:
        sub.wait_for(f"{BASE}/line1/event", 5, timeout=30)
        mosquitto.stop()
        time.sleep(2.0)  # rows accumulate, none can be acknowledged
        agent.kill()  # SIGKILL: no shutdown, no checkpoint; the WAL is all there is
    db = sqlite3.connect(outbox)
    pending = db.execute("SELECT id, topic, payload FROM outbox ORDER BY id").fetchall()
    db.close()
    events = [json.loads(p) for _, t, p in pending if t.endswith("/event")]
    assert len(events) >= 10, f"only {len(events)} event(s) pending at the kill"
    assert all(t.startswith("line1/") for _, t, _ in pending)

    mosquitto.start()
    assert sub.wait_subscribed(10)
    with AgentProcess(config) as agent:
        wanted = {(f"{BASE}/{t}", bytes(p)) for _, t, p in pending}

        def arrived() -> set[tuple[str, bytes]]:
            return wanted - {(m.topic, m.payload) for m in sub.matching(f"{BASE}/line1/#")}

        assert wait_until(lambda: not arrived(), 20), (
            f"{len(arrived())} of {len(wanted)} missing\n{agent.log()}"
        )
        assert "pending from a previous run" in agent.log()
        assert agent.terminate(timeout=15) == 0, agent.log()
    received = [json.loads(m.payload) for m in sub.matching(f"{BASE}/line1/event")]
    order = [e["event_id"] for e in _dedup(received)]
    replayed = [e["event_id"] for e in events]
    positions = [order.index(event_id) for event_id in replayed]
    assert positions == sorted(positions), "the replay keeps the original order"
    sub.close()


def test_broker_outages_and_sigkills_together_for_three_cycles(
    mosquitto_persistent: Mosquitto, short_line: dict[str, Any], tmp_path: Path
) -> None:
    """Each cycle: broker down, agent SIGKILLed while rows wait, both back. Every event in the outbox at a
    kill arrives after the restarts; nothing acknowledged is sent from the outbox again."""
    broker = mosquitto_persistent
    sub = Subscriber(broker, f"{BASE}/line1/event", client_id="cycles-sub", clean_session=False)
    outbox = tmp_path / "outbox.sqlite3"
    config = _config(tmp_path, broker, short_line, outbox)
    persisted_at_kills: list[str] = []
    for cycle in range(3):
        with AgentProcess(config) as agent:
            received = len(sub.matching(f"{BASE}/line1/event"))
            sub.wait_for(f"{BASE}/line1/event", received + 3, timeout=30)
            broker.stop()
            time.sleep(1.5)
            agent.kill()
        db = sqlite3.connect(outbox)
        rows = db.execute("SELECT topic, payload FROM outbox ORDER BY id").fetchall()
        db.close()
        persisted_at_kills += [json.loads(p)["event_id"] for t, p in rows if t.endswith("/event")]
        assert rows, f"cycle {cycle}: nothing was waiting in the outbox at the kill"
        broker.start()
        assert sub.wait_subscribed(10)
    with AgentProcess(config) as agent:

        def missing() -> set[str]:
            got = {json.loads(m.payload)["event_id"] for m in sub.matching(f"{BASE}/line1/event")}
            return set(persisted_at_kills) - got

        assert wait_until(lambda: not missing(), 30), f"{len(missing())} missing\n{agent.log()}"
        assert agent.terminate(timeout=15) == 0, agent.log()
    sub.close()
