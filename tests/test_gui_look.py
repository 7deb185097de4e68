"""The window's light/dark choice and remembered size, without a display."""

import json
from pathlib import Path

import pytest

from kadchat.ui.gui.appearance import chosen_mode
from kadchat.ui.gui.winstate import DEFAULT_SIZE, initial_geometry, save_geometry

SCREEN = (1920, 1080)


@pytest.fixture
def no_portal(tmp_path, monkeypatch):
    """A session bus address where nothing listens: the portal does not answer."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    return {"XDG_CONFIG_HOME": str(tmp_path / "config")}


def gtk_settings(environ, text):
    folder = Path(environ["XDG_CONFIG_HOME"]) / "gtk-3.0"
    folder.mkdir(parents=True)
    (folder / "settings.ini").write_text(text)


@pytest.mark.parametrize("forced", ["light", "dark", " DARK "])
def test_kadchat_theme_forces_the_mode(forced):
    assert chosen_mode({"KADCHAT_THEME": forced}) == forced.strip().lower()


def test_without_portal_or_gtk_setting_the_window_is_light(no_portal):
    assert chosen_mode(no_portal) == "light"
    assert chosen_mode(dict(no_portal, KADCHAT_THEME="system")) == "light"


@pytest.mark.parametrize("text, mode", [
    ("[Settings]\ngtk-application-prefer-dark-theme=1\n", "dark"),
    ("[Settings]\ngtk-theme-name=Adwaita-dark\n", "dark"),
    ("[Settings]\ngtk-theme-name=Adwaita\ngtk-application-prefer-dark-theme=0\n", "light"),
    ("not an ini file at all", "light"),
])
def test_gtk_settings_are_asked_when_there_is_no_portal(no_portal, text, mode):
    gtk_settings(no_portal, text)
    assert chosen_mode(no_portal) == mode


def test_gtk_theme_variable_asks_for_dark(no_portal):
    assert chosen_mode(dict(no_portal, GTK_THEME="Adwaita:dark")) == "dark"


def test_a_first_run_gets_the_default_size_cut_to_the_screen(tmp_path):
    assert initial_geometry(tmp_path / "window.json", SCREEN) == "1100x720"
    assert initial_geometry(None, (1024, 600)) == "972x530"  # 95% less the title bar
    assert DEFAULT_SIZE == (1100, 720)


def test_a_saved_geometry_comes_back(tmp_path):
    path = tmp_path / "window.json"
    save_geometry(path, "900x650+30+20")
    assert json.loads(path.read_text()) == {"geometry": "900x650+30+20"}
    assert initial_geometry(path, SCREEN) == "900x650+30+20"
    assert initial_geometry(path, (800, 600)) == "760x530+30+20"  # a smaller screen now
    save_geometry(path, "900x650+5000+20")
    assert initial_geometry(path, SCREEN) == "900x650"  # off the screen: the place is dropped
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("text", ["", "{", "[]", '{"geometry": 5}', '{"geometry": "huge"}'])
def test_a_damaged_window_file_gives_the_default(tmp_path, text):
    path = tmp_path / "window.json"
    path.write_text(text)
    assert initial_geometry(path, SCREEN) == "1100x720"


def test_a_bad_geometry_or_a_read_only_folder_is_not_saved_and_not_an_error(tmp_path):
    save_geometry(tmp_path / "window.json", "garbage")
    assert not (tmp_path / "window.json").exists()
    save_geometry(tmp_path / "missing" / "window.json", "900x650+0+0")  # no exception
