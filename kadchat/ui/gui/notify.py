"""Desktop notifications: org.freedesktop.Notifications on the D-Bus session bus.

Sent by a worker thread that owns the bus connection (jeepney, blocking I/O),
so a slow or missing notification daemon never stalls the window. One
notification per conversation, replaced by the next message from the same
person rather than stacked.
"""

from __future__ import annotations

import queue
import threading

from twisted.logger import Logger

APP_NAME = "kadchat"
BODY_LIMIT = 200  # characters of the message shown
REPLY_TIMEOUT = 5.0  # seconds


class Notifier:
    log = Logger()

    def __init__(self, bus: str = "SESSION"):
        self._bus = bus  # "SESSION": the address in $DBUS_SESSION_BUS_ADDRESS
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def notify(self, key: str, title: str, body: str) -> None:
        """Show `title` and `body`; a later call with the same `key` replaces it."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="notifications", daemon=True)
            self._thread.start()
        self._queue.put((key, title, _shortened(body)))

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)

    def _run(self) -> None:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection

        server = DBusAddress("/org/freedesktop/Notifications", bus_name="org.freedesktop.Notifications",
                             interface="org.freedesktop.Notifications")
        shown: dict[str, int] = {}  # key -> the server's notification id, to replace
        try:
            connection = open_dbus_connection(bus=self._bus)
        except Exception as e:  # no session bus: no notifications, said once
            self.log.warn("no desktop notifications: {error}", error=e)
            return
        with connection:
            while (item := self._queue.get()) is not None:
                key, title, body = item
                call = new_method_call(server, "Notify", "susssasa{sv}i", (
                    APP_NAME, shown.get(key, 0), "", title, body, [],
                    {"category": ("s", "im.received")}, -1))
                try:
                    reply = connection.send_and_get_reply(call, timeout=REPLY_TIMEOUT)
                except Exception as e:
                    self.log.warn("a desktop notification failed: {error}", error=e)
                    continue
                if reply.body and isinstance(reply.body[0], int):
                    shown[key] = reply.body[0]


def _shortened(text: str) -> str:
    return text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT - 1] + "\u2026"
