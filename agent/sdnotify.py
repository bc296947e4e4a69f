"""systemd's notify protocol (``sd_notify(3)``) without a dependency: one datagram per message.

systemd sets ``NOTIFY_SOCKET`` for ``Type=notify`` services and ``WATCHDOG_USEC`` when
``WatchdogSec=`` is set. Outside systemd both are absent and every call is a no-op, so the agent
runs the same in a terminal, a container or a test.

    notifier = Notifier.from_environment()
    notifier.ready("1 camera online")            # READY=1 after the first frame is processed
    notifier.watchdog()                          # WATCHDOG=1, only while frames flow
    notifier.stopping()                          # STOPPING=1 on SIGTERM
"""

from __future__ import annotations

import logging
import os
import socket

__all__ = ["Notifier"]

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_interval_s = watchdog_usec / 2e6 if watchdog_usec else None  # ping at half the timeout
        self._sock: socket.socket | None = None
        self._failed = False
        if address:
            # "@name" is an abstract socket: the leading byte is NUL on the wire.
            self._target = "\0" + address[1:] if address.startswith("@") else address
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        watchdog = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        if pid and pid != str(os.getpid()):
            watchdog = None  # the watchdog is meant for another process (e.g. a wrapper)
        return cls(
            env.get("NOTIFY_SOCKET") or None, int(watchdog) if watchdog and watchdog.isdigit() else None
        )

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=value`` lines as one datagram; False (logged once) when systemd cannot be reached."""
        if self._sock is None:
            return False
        try:
            self._sock.sendto("\n".join(fields).encode(), self._target)
            return True
        except OSError as exc:
            if not self._failed:
                log.warning("sd_notify to %s failed: %s", self.address, exc)
                self._failed = True
            return False

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> bool:
        return self.send(f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str = "stopping") -> bool:
        return self.send("STOPPING=1", f"STATUS={status}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
