"""Light or dark: what the desktop prefers, unless KADCHAT_THEME says.

The freedesktop settings portal (`org.freedesktop.appearance color-scheme`,
read over the D-Bus session bus) is what GNOME, KDE and others answer, and it
signals a change (ModeWatcher hears it); without it, GTK's own setting
(`GTK_THEME=Name:dark`, settings.ini's `gtk-application-prefer-dark-theme` or
a theme named "...dark"), read at start.
"""

from __future__ import annotations

import configparser
import os
import queue
import threading
from pathlib import Path

THEME_ENV = "KADCHAT_THEME"  # light | dark | system (the default)
MODES = ("light", "dark")
PORTAL_TIMEOUT = 1.0  # seconds; a missing portal must not hold up the window


def forced_mode(environ=os.environ) -> str | None:
    """The mode KADCHAT_THEME asks for, or None to follow the desktop."""
    forced = environ.get(THEME_ENV, "system").strip().lower()
    return forced if forced in MODES else None


def chosen_mode(environ=os.environ) -> str:
    """"light" or "dark"."""
    forced = forced_mode(environ)
    if forced is not None:
        return forced
    prefers_dark = _portal_prefers_dark()
    if prefers_dark is None:
        prefers_dark = _gtk_prefers_dark(environ)
    return "dark" if prefers_dark else "light"


def _portal_prefers_dark() -> bool | None:
    """True or False as the portal says; None when there is no answer (1 dark, 2 light, 0 none)."""
    try:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
        portal = DBusAddress("/org/freedesktop/portal/desktop", bus_name="org.freedesktop.portal.Desktop",
                             interface="org.freedesktop.portal.Settings")
        with open_dbus_connection(bus="SESSION") as bus:
            reply = bus.send_and_get_reply(
                new_method_call(portal, "Read", "ss", ("org.freedesktop.appearance", "color-scheme")),
                timeout=PORTAL_TIMEOUT)
    except Exception:  # no bus, no portal, no answer in time: ask GTK instead
        return None
    return _scheme_is_dark(reply.body[0] if reply.body else None)


def _scheme_is_dark(value) -> bool | None:
    while isinstance(value, tuple):  # variants, nested once by older portals
        value = value[1]
    return {1: True, 2: False}.get(value)


class ModeWatcher:
    """Hears the portal's SettingChanged for the colour scheme, on a thread of its own
    (the window asks `latest()` from its own loop: Tk is called from one thread only)."""

    def __init__(self, bus: str = "SESSION"):
        self._bus = bus
        self._changes: queue.SimpleQueue = queue.SimpleQueue()
        self._running = True
        threading.Thread(target=self._listen, name="colour scheme", daemon=True).start()

    def latest(self) -> str | None:
        """The newest mode heard since the last call, or None."""
        mode = None
        while not self._changes.empty():
            mode = self._changes.get()
        return mode

    def stop(self) -> None:
        self._running = False

    def _listen(self) -> None:
        from jeepney import MatchRule, MessageType
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        rule = MatchRule(type="signal", interface="org.freedesktop.portal.Settings",
                         member="SettingChanged", path="/org/freedesktop/portal/desktop")
        rule.add_arg_condition(0, "org.freedesktop.appearance")
        try:
            bus = open_dbus_connection(bus=self._bus)
        except Exception:  # no session bus: nothing to follow
            return
        with bus:
            bus.send_and_get_reply(message_bus.AddMatch(rule), timeout=PORTAL_TIMEOUT)
            while self._running:
                try:
                    message = bus.receive(timeout=1.0)
                except TimeoutError:
                    continue
                except OSError:  # the bus went away: nothing more to hear
                    return
                if (message.header.message_type == MessageType.signal and rule.matches(message)
                        and message.body[1:2] == ("color-scheme",)):
                    dark = _scheme_is_dark(message.body[2])
                    if dark is not None:
                        self._changes.put("dark" if dark else "light")


def _gtk_prefers_dark(environ) -> bool:
    if environ.get("GTK_THEME", "").lower().endswith(":dark"):
        return True
    config = Path(environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    settings = configparser.ConfigParser(interpolation=None)
    try:
        settings.read(config / "gtk-3.0" / "settings.ini", encoding="utf-8")
        gtk = settings["Settings"] if settings.has_section("Settings") else {}
    except (configparser.Error, UnicodeDecodeError):
        return False
    prefer = gtk.get("gtk-application-prefer-dark-theme", "").strip().lower()
    return prefer in ("1", "true") or "dark" in gtk.get("gtk-theme-name", "").lower()
