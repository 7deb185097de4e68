"""Light or dark: what the desktop prefers, unless KADCHAT_THEME says.

The freedesktop settings portal (`org.freedesktop.appearance color-scheme`,
read over the D-Bus session bus) is what GNOME, KDE and others answer;
without it, GTK's own setting (`GTK_THEME=Name:dark`, settings.ini's
`gtk-application-prefer-dark-theme` or a theme named "...dark").
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path

THEME_ENV = "KADCHAT_THEME"  # light | dark | system (the default)
MODES = ("light", "dark")
PORTAL_TIMEOUT = 1.0  # seconds; a missing portal must not hold up the window


def chosen_mode(environ=os.environ) -> str:
    """"light" or "dark"."""
    forced = environ.get(THEME_ENV, "system").strip().lower()
    if forced in MODES:
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
    value = reply.body[0] if reply.body else None
    while isinstance(value, tuple):  # variants, nested once by older portals
        value = value[1]
    return {1: True, 2: False}.get(value)


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
