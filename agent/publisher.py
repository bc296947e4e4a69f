"""MQTT for the agent: the only module that imports paho.

One ``MqttPublisher`` per process: a retained ``available`` topic with an ``offline`` last will,
``online`` and the last State re-published on every (re)connect, commands subscribed on
``<prefix>/<device>/cmd/+`` and handed raw to ``on_command``, typed publishing helpers for the
payloads in ``agent.messages``, and an ``on_published(mid)`` hook for acknowledged QoS 1 messages.

Acks and the paho race: a PUBACK can arrive (on paho's thread) before ``publish()`` has returned
its mid. The publisher never calls ``on_published`` from paho's thread: acks go through a queue to
its own ack thread, which reports a mid only once ``publish()`` has recorded it. A caller that pairs
mids with its own records (the outbox) should hold its own lock around ``publish()`` + recording
and take that lock in the hook; paho's locks are never held while the hook runs, so this cannot
deadlock, and the hook can never see a mid the caller has not recorded yet.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from pydantic import BaseModel

from agent.messages import Event, Reply, Result, State, Stats, Topics

__all__ = ["BrokerSettings", "MqttPublisher", "PublishTicket", "PublisherCounters"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerSettings:
    host: str = "localhost"
    port: int = 1883
    client_id: str = ""  # empty: paho generates one
    keepalive_s: int = 30
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # already resolved from env/file; never logged
    tls: bool = False  # TLS with the system CAs; implied by any tls_* file
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_insecure: bool = False  # skip the host name check (never the chain)
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0
    qos_events: int = 1  # events, images and replies
    max_queued: int = 1000  # QoS>=1 messages paho keeps in memory while disconnected (0 = unbounded)

    @property
    def use_tls(self) -> bool:
        return self.tls or bool(self.tls_ca_file or self.tls_cert_file or self.tls_key_file)


@dataclass(frozen=True)
class PublishTicket:
    mid: int
    topic: str
    queued: bool  # False: neither sent nor queued (counted in publish_failed)


@dataclass(frozen=True)
class PublisherCounters:
    reconnects: int
    published: int  # QoS 0 written to the socket, QoS>=1 acknowledged
    publish_failed: int  # could not be sent or queued (QoS 0 while offline, queue full)
    unacked: int  # QoS>=1 messages published and not yet acknowledged


_STOP = -1


class MqttPublisher:
    def __init__(
        self,
        settings: BrokerSettings,
        prefix: str,
        device: str,
        on_command: Callable[[str, bytes], None],
        on_published: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.topics = Topics(prefix, device)
        self.on_command = on_command
        self.on_published = on_published  # called on the ack thread with each acknowledged QoS>=1 mid
        self._lock = threading.Lock()  # guards the fields below; never held while waiting on paho
        self._pub_lock = threading.Lock()  # serialises publish() with the ack thread's bookkeeping
        self._unacked: set[int] = set()
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._ack_thread: threading.Thread | None = None
        self._connected = threading.Event()
        self._ever_connected = False
        self._stopping = False
        self._down_logged = self._fail_logged = False
        self._last_state: bytes | None = None
        self._reconnects = self._published = self._failed = 0
        self._subscriptions: dict[
            str, tuple[int, Callable[[str, bytes], None]]
        ] = {}  # filter -> (qos, handler)
        self._client = self._make_client()

    # --- lifecycle ---------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id, clean_session=True)
        client.will_set(self.topics.available, b"offline", qos=1, retain=True)
        client.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)  # type: ignore[arg-type]  # floats work
        client.max_queued_messages_set(s.max_queued)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.use_tls:
            client.tls_set(ca_certs=s.tls_ca_file, certfile=s.tls_cert_file, keyfile=s.tls_key_file)
            client.tls_insecure_set(s.tls_insecure)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    def connect(self) -> None:
        """Start connecting in the background (once); returns at once, even when the broker is down."""
        if self._ack_thread is not None:
            raise RuntimeError("MqttPublisher.connect() was already called")
        s = self.settings
        log.info(
            "MQTT connecting to %s:%d%s as %r", s.host, s.port, " (TLS)" if s.use_tls else "", s.client_id
        )
        self._ack_thread = threading.Thread(target=self._ack_loop, name="mqtt-acks", daemon=True)
        self._ack_thread.start()
        self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        self._client.loop_start()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Publish ``offline``, wait (bounded) for unacknowledged QoS 1 messages, disconnect cleanly.

        A clean DISCONNECT makes the broker discard the last will; the explicit ``offline`` replaces it.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._stopping = True
        if self.connected:
            self._publish(self.topics.available, b"offline", 1, True)
            while self._unacked_count() and self.connected and time.monotonic() < deadline:
                time.sleep(0.01)
        left = self._unacked_count()
        if left:
            log.warning("MQTT stopping with %d unacknowledged message(s)", left)
        self._client.disconnect()
        self._client.loop_stop()
        if self._ack_thread is not None:
            self._acks.put(_STOP)
            self._ack_thread.join(max(0.1, deadline - time.monotonic()))
        self._connected.clear()

    # --- publishing --------------------------------------------------------------------------------

    def publish(self, topic_suffix: str, payload: bytes, qos: int = 0, retain: bool = False) -> PublishTicket:
        """Publish on ``<prefix>/<device>/<topic_suffix>``."""
        return self._publish(f"{self.topics.base}/{topic_suffix}", payload, qos, retain)

    def publish_state(self, state: State) -> None:
        """Retained; remembered and re-published on every reconnect."""
        payload = state.model_dump_json().encode()
        with self._lock:
            self._last_state = payload
        self._publish(self.topics.state, payload, 1, True)

    def publish_stats(self, stats: Stats) -> None:
        self._publish(self.topics.stats, _json(stats), 0, False)

    def publish_result(self, camera: str, result: Result) -> None:
        self._publish(self.topics.result(camera), _json(result), 0, False)

    def publish_event(self, camera: str, event: Event) -> int | None:
        """The mid to wait for in ``on_published``; None when it could not be queued."""
        ticket = self._publish(self.topics.event(camera), _json(event), self.settings.qos_events, False)
        return ticket.mid if ticket.queued else None

    def publish_image(self, camera: str, event_id: str, jpeg: bytes, raw: bool = False) -> int | None:
        ticket = self._publish(
            self.topics.image(camera, event_id, raw), jpeg, self.settings.qos_events, False
        )
        return ticket.mid if ticket.queued else None

    def subscribe(self, topic_filter: str, qos: int, handler: Callable[[str, bytes], None]) -> None:
        """Also deliver messages on ``topic_filter`` (a full topic, no prefix added) to
        ``handler(topic, payload)``, on paho's thread: the handler must be quick and must not block.
        Renewed on every reconnect."""
        with self._lock:
            self._subscriptions[topic_filter] = (qos, handler)
        if self.connected:
            self._client.subscribe(topic_filter, qos=qos)

    def unsubscribe(self, topic_filter: str) -> None:
        """Stop delivering ``topic_filter`` (a reload removed or changed the sensor group that wanted it)."""
        with self._lock:
            known = self._subscriptions.pop(topic_filter, None) is not None
        if known and self.connected:
            self._client.unsubscribe(topic_filter)

    def reply(self, command: str, reply: Reply) -> None:
        self._publish(self.topics.reply(command), _json(reply), 1, False)

    def counters(self) -> PublisherCounters:
        with self._lock:
            reconnects, published, failed = self._reconnects, self._published, self._failed
        return PublisherCounters(reconnects, published, failed, self._unacked_count())

    def _unacked_count(self) -> int:
        with self._pub_lock:
            return len(self._unacked)

    def _publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> PublishTicket:
        with self._pub_lock:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
            # QoS>=1 with no connection: paho keeps it and sends it on reconnect.
            queued = info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
                qos > 0 and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN
            )
            if queued and qos > 0:
                self._unacked.add(info.mid)
        if not queued:
            with self._lock:
                self._failed += 1
                first, self._fail_logged = not self._fail_logged, True
            if first:  # once per outage, the counter tells the rest
                log.warning("MQTT publish to %s dropped: %s", topic, mqtt.error_string(info.rc))
        return PublishTicket(info.mid, topic, queued)

    # --- paho callbacks (paho's thread: never block, never raise) ------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        failed = getattr(reason, "is_failure", False)
        s = self.settings
        if failed:
            with self._lock:
                first, self._down_logged = not self._down_logged, True
            if first:
                log.error("MQTT connection to %s:%d refused: %s; retrying", s.host, s.port, reason)
            return
        with self._lock:
            if self._ever_connected:
                self._reconnects += 1
            self._ever_connected, self._down_logged, self._fail_logged = True, False, False
            state = self._last_state
            extra = [(topic_filter, qos) for topic_filter, (qos, _h) in self._subscriptions.items()]
        log.info("MQTT connected to %s:%d", s.host, s.port)
        try:
            client.subscribe(self.topics.cmd_filter, qos=1)
            for topic_filter, qos in extra:
                client.subscribe(topic_filter, qos=qos)
            self._publish(self.topics.available, b"online", 1, True)
            if state is not None:
                self._publish(self.topics.state, state, 1, True)
        except Exception:  # pragma: no cover - a bug here must not kill paho's thread
            log.exception("MQTT on_connect failed")
        self._connected.set()  # after "online" and the state are queued (wait_connected relies on it)

    def _on_connect_fail(self, _c: mqtt.Client, _u: object) -> None:
        with self._lock:
            first, self._down_logged = not self._down_logged, True
        if first:
            s = self.settings
            log.warning("MQTT broker %s:%d unreachable (network or TLS error); retrying", s.host, s.port)

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        with self._lock:
            stopping = self._stopping
        if stopping:
            log.info("MQTT disconnected (stopped)")
        elif was:
            log.warning("MQTT disconnected: %s; reconnecting", reason)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        if not topic.startswith(self.topics.cmd_prefix):
            self._deliver(topic, bytes(msg.payload))
            return
        name = topic[len(self.topics.cmd_prefix) :]
        if "/" in name:  # e.g. our own .../reply if someone subscribes us wider
            return
        try:
            self.on_command(name, bytes(msg.payload))
        except Exception:
            log.exception("MQTT command handler failed for %r", name)

    def _deliver(self, topic: str, payload: bytes) -> None:
        with self._lock:
            handlers = [h for f, (_q, h) in self._subscriptions.items() if mqtt.topic_matches_sub(f, topic)]
        for handler in handlers:
            try:
                handler(topic, payload)
            except Exception:
                log.exception("MQTT handler for %r failed", topic)

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, _r: object, _p: object) -> None:
        with self._lock:
            self._published += 1
        self._acks.put(mid)

    # --- ack thread --------------------------------------------------------------------------------

    def _ack_loop(self) -> None:
        while (mid := self._acks.get()) != _STOP:
            with self._pub_lock:  # waits for a publish() still registering this mid
                mine = mid in self._unacked
                self._unacked.discard(mid)
            hook = self.on_published
            if mine and hook is not None:
                try:
                    hook(mid)
                except Exception:
                    log.exception("on_published(%d) failed", mid)


def _json(message: BaseModel) -> bytes:
    return message.model_dump_json().encode()
