"""A real mosquitto for tests, and a subscriber that collects what it receives.

    broker = Mosquitto(tmp_path).start()      # 127.0.0.1, a free port, anonymous, no persistence
    broker.stop(); broker.start()             # an outage: same port again
    sub = Subscriber(broker, "inspect/#")
    sub.wait_for("inspect/dev1/available", 1, timeout=3)

Options: ``users={"name": "password"}`` (mosquitto_passwd), ``tls=True`` (certificates made with the
openssl CLI: ``broker.ca_file``, and ``require_certificate=True`` for client certificates), and
``persistence=True`` (sessions and queued QoS 1 messages survive a restart).
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.demo_broker import find_mosquitto, free_port

__all__ = ["Mosquitto", "Received", "Subscriber", "find_mosquitto", "free_port", "have_openssl"]


def _find(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(f"/usr/bin/{tool}") or shutil.which(f"/usr/sbin/{tool}")


def have_openssl() -> bool:
    return _find("openssl") is not None


class Mosquitto:
    def __init__(
        self,
        workdir: Path,
        *,
        users: dict[str, str] | None = None,
        tls: bool = False,
        require_certificate: bool = False,
        persistence: bool = False,
    ) -> None:
        exe = find_mosquitto()
        if exe is None:
            raise RuntimeError("mosquitto not found (apt-get install mosquitto)")
        self.host, self.port = "127.0.0.1", free_port()
        self.exe, self.dir = exe, workdir / f"mosquitto-{self.port}"
        self.dir.mkdir(parents=True)
        workdir = self.dir
        self.ca_file: str | None = None
        self.client_cert: tuple[str, str] | None = None
        self.log_path = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'false' if users else 'true'}",
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {workdir}/",
            f"user {getpass.getuser()}",  # as root, do not drop to 'mosquitto' (it could not read tmp files)
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if users:
            lines.append(f"password_file {self._password_file(users)}")
        if tls:
            lines += self._certificates(require_certificate)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def _password_file(self, users: dict[str, str]) -> Path:
        tool = _find("mosquitto_passwd")
        if tool is None:
            raise RuntimeError("mosquitto_passwd not found")
        path = self.dir / "passwords"
        for i, (name, password) in enumerate(users.items()):
            flags = ["-b", "-c"] if i == 0 else ["-b"]
            subprocess.run([tool, *flags, str(path), name, password], check=True, capture_output=True)
        return path

    def _certificates(self, require_certificate: bool) -> list[str]:
        tool = _find("openssl")
        if tool is None:
            raise RuntimeError("openssl not found")
        d = self.dir

        def run(*args: str) -> None:
            subprocess.run([tool, *args], check=True, capture_output=True, cwd=d)

        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]
        run(
            "req",
            "-x509",
            *key,
            *ca_ext,
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=ca",
        )
        for name, usage in (("server", "serverAuth"), ("client", "clientAuth")):
            (d / f"{name}.ext").write_text(
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                f"extendedKeyUsage={usage}\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "authorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n"
            )
            run("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
            run(
                "x509",
                "-req",
                "-in",
                f"{name}.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                f"{name}.crt",
                "-days",
                "2",
                "-extfile",
                f"{name}.ext",
            )
        self.ca_file = str(d / "ca.crt")
        self.client_cert = (str(d / "client.crt"), str(d / "client.key"))
        lines = [f"cafile {d}/ca.crt", f"certfile {d}/server.crt", f"keyfile {d}/server.key"]
        if require_certificate:
            lines.append("require_certificate true")
        return lines

    def start(self, timeout: float = 5.0) -> Mosquitto:
        """Start (or restart, on the same port) and wait until the port accepts connections."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.2):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (mosquitto saves its persistence file), SIGKILL if it lingers."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)
        self.proc = None

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int


class Subscriber:
    """A paho client that records every message, reconnecting (and resubscribing) on its own."""

    def __init__(
        self,
        broker: Mosquitto,
        *topic_filters: str,
        client_id: str = "",
        clean_session: bool = True,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.filters = topic_filters or ("#",)
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session)
        client.reconnect_delay_set(0.05, 0.2)  # type: ignore[arg-type]
        if username is not None:
            client.username_pw_set(username, password)
        if broker.ca_file:
            cert, key = broker.client_cert or (None, None)
            client.tls_set(ca_certs=broker.ca_file, certfile=cert, keyfile=key, cert_reqs=ssl.CERT_REQUIRED)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_: self._subscribed.set()
        client.on_disconnect = lambda *_: self._subscribed.clear()
        client.on_message = self._on_message
        self.client = client
        client.connect_async(broker.host, broker.port, keepalive=5)
        client.loop_start()
        if not self._subscribed.wait(timeout):
            self.close()
            raise TimeoutError(f"subscriber not subscribed within {timeout}s")

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        if not getattr(reason, "is_failure", False):
            client.subscribe([(f, 1) for f in self.filters])

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos))
            self._cond.notify_all()

    def matching(self, topic_filter: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if mqtt.topic_matches_sub(topic_filter, m.topic)]

    def wait_for(self, topic_filter: str, count: int = 1, timeout: float = 5.0) -> list[Received]:
        """The messages matching ``topic_filter`` once there are ``count``; TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self.messages if mqtt.topic_matches_sub(topic_filter, m.topic)]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    break
                self._cond.wait(left)
        if len(found) < count:
            seen = sorted({m.topic for m in self.messages})
            raise TimeoutError(
                f"{len(found)}/{count} message(s) on {topic_filter} in {timeout}s; seen {seen}"
            )
        return found

    def wait_subscribed(self, timeout: float = 5.0) -> bool:
        """After a broker restart: True once reconnected and subscribed again."""
        return self._subscribed.wait(timeout)

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 5.0) -> None:
        """Publish once (re)connected; wait for the PUBACK. Bounded by ``timeout``."""
        if not self._subscribed.wait(timeout):
            raise TimeoutError(f"subscriber not connected within {timeout}s")
        self.client.publish(topic, payload, qos=qos).wait_for_publish(timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
