"""A private D-Bus session bus (dbus-daemon) and small services on it, for the
GUI's notification and dark-mode tests. The services use jeepney, the library
the window itself uses."""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest


class SessionBus:
    """`dbus-daemon --session` of its own; `address` for DBUS_SESSION_BUS_ADDRESS."""

    def __init__(self):
        if shutil.which("dbus-daemon") is None:
            pytest.skip("needs dbus-daemon (apt package dbus)")
        self.process = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address"],
                                        stdout=subprocess.PIPE, text=True)
        self.address = self.process.stdout.readline().strip()
        assert self.address, "dbus-daemon printed no address"

    def stop(self):
        self.process.terminate()
        self.process.wait(10)
        self.process.stdout.close()


class Service:
    """Owns `name` on the bus and answers method calls with `answer(message) -> (signature, body)`
    from a thread of its own; every call is kept in `calls`."""

    def __init__(self, address, name, answer):
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        self.calls = []
        self._answer = answer
        self._running = True
        self._connection = open_dbus_connection(bus=address)
        reply = self._connection.send_and_get_reply(message_bus.RequestName(name), timeout=5)
        assert reply.body == (1,), f"could not own {name}: {reply.body}"  # 1: primary owner
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        from jeepney import MessageType, new_method_return

        while self._running:
            try:
                message = self._connection.receive(timeout=0.1)
            except TimeoutError:
                continue
            if message.header.message_type != MessageType.method_call:
                continue
            self.calls.append(message)
            signature, body = self._answer(message)
            self._connection.send(new_method_return(message, signature, body))

    def emit(self, path, interface, member, signature, body):
        """A signal from this service, to whoever added a match for it."""
        from jeepney import DBusAddress, new_signal

        self._connection.send(new_signal(DBusAddress(path, interface=interface), member, signature, body))

    def stop(self):
        self._running = False
        self._thread.join(5)
        self._connection.close()


class NotificationServer(Service):
    """org.freedesktop.Notifications: Notify's arguments are kept; ids count from 1."""

    def __init__(self, address):
        self.shown = []  # (app, replaces_id, icon, summary, body, actions, hints, timeout) per Notify
        super().__init__(address, "org.freedesktop.Notifications", self._notify)

    def _notify(self, message):
        if message.header.fields.get(3) == "Notify":  # 3: the MEMBER header field
            self.shown.append(message.body)
            return "u", (len(self.shown),)
        return None, ()
