"""File transfers in the window (kadchat.ui.gui.transfercard, filedrop, thumbnails), on the
backend double under Xvfb. A real drag from a file manager can't be synthesised under Xvfb
(tkdnd speaks XDND with another client): the drop is tested from tkdnd's data onwards."""

import os

import pytest

# tkdnd (kadchat.ui.gui.filedrop) and Pillow's Tk parts, loaded into a process that has had
# other Tk interpreters, end it (exit 1, nothing printed): these tests run in a process of
# their own, started by tests/test_gui_files_process.py (the window has one interpreter
# per process). Skipped before anything of theirs is imported.
if os.environ.get("KADCHAT_GUI_FILES_OWN_PROCESS") != "1":
    pytest.skip("run in a process of their own by tests/test_gui_files_process.py", allow_module_level=True)


import struct
import zlib
from dataclasses import replace

from PIL import Image

from kadchat.errors import UserError
from kadchat.ui.gui.filedrop import dropped_paths
from kadchat.ui.gui.thumbnails import MAX_PIXELS, thumbnail
from kadchat.ui.gui.transfercard import RateMeter, time_left
from tests.test_gui import NOW, Gui, display  # noqa: F401 (display: the fixture)

pytestmark = pytest.mark.gui


class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self):
        return self.now


@pytest.fixture
def files(display, tmp_path):
    opened, chosen, clock = [], [], Clock()
    gui = Gui(display, geometry="1280x800", opener=opened.append, chooser=lambda parent, done: done(list(chosen)))
    gui.window.files._now = clock  # the rate's clock, moved by the test
    gui.opened, gui.chosen, gui.clock, gui.tmp = opened, chosen, clock, tmp_path
    gui.backend.add("bob", presence="connected")
    yield gui
    gui.close()


def card(gui, transfer_id):
    gui.update()
    return gui.window.conversations["bob"].cards[transfer_id]


def test_an_offer_is_accepted_shows_progress_and_arrives_with_a_thumbnail(files):
    files.start()
    files.unfocus()
    offer = files.backend.offer_file("bob", "cat.png", 2_000_000)
    assert files.notifications == [(f"file:{offer.id}", "bob", "offers cat.png (2.0 MB)")]
    c = card(files, offer.id)  # the tab opened for the offer
    assert c.actions() == ["Accept", "Decline"] and "2.0 MB \u00b7 from bob \u00b7 offered" in c.meta.cget("text")
    c._actions["Accept"].invoke()
    assert files.backend.transfers()[0].state == "active" and c.actions() == ["Cancel"]
    files.clock.now += 1
    files.backend.set_transfer(offer.id, done=500_000)
    files.clock.now += 1
    files.backend.set_transfer(offer.id, done=1_000_000)
    files.update()
    assert c.progress.winfo_ismapped() and c.progress.cget("value") == 1_000_000
    assert c.detail.cget("text") == "1.0 MB of 2.0 MB \u00b7 500.0 kB/s \u00b7 2 s left"
    path = files.tmp / "cat.png"
    Image.new("RGB", (1600, 1200), (200, 80, 40)).save(path)
    files.backend.set_transfer(offer.id, state="done", done=2_000_000, path=str(path))
    files.wait_until(lambda: c.thumbnail is not None)
    files.update()
    assert (c.thumbnail.width(), c.thumbnail.height()) == (240, 180)
    assert not c.progress.winfo_ismapped() and c.actions() == ["Open", "Show in folder"]
    c._actions["Open"].invoke()
    c._actions["Show in folder"].invoke()
    assert files.opened == [str(path), str(files.tmp)]
    assert files.notifications[1:] == []  # one notification per offer


def test_progress_is_asked_for_while_a_transfer_runs(files, monkeypatch):
    """The backend tells changes of state only; the window polls while one runs."""
    files.start()
    offer = files.backend.offer_file("bob", "big.iso", 4_000_000)
    files.backend.accept_file(offer.id)
    c = card(files, offer.id)
    running = replace(files.backend.transfers()[0], done=3_000_000)
    monkeypatch.setattr(files.backend, "transfers", lambda: [running])
    files.wait_until(lambda: c.progress.cget("value") == 3_000_000)
    assert c.detail.cget("text").startswith("3.0 MB of 4.0 MB")
    assert files.window._progress_pending is not None
    running = replace(running, state="done", done=4_000_000, path="/tmp/big.iso")
    files.wait_until(lambda: files.window._progress_pending is None)  # nothing runs: no more polls


def test_declining_an_offer_cancels_it(files):
    files.start()
    offer = files.backend.offer_file("bob", "notes.txt", 300)
    c = card(files, offer.id)
    c._actions["Decline"].invoke()
    assert files.backend.transfers()[0].state == "cancelled"
    assert c.actions() == [] and c.meta.cget("text").endswith("cancelled: cancelled here")


def test_attach_offers_the_chosen_files_and_cancel_stops_one(files):
    files.start()
    tab = files.window.open_conversation("bob")
    files.chosen += ["/home/alice/a.pdf", "/home/alice/b c.txt"]
    tab.attach_button.invoke()
    sent = files.backend.transfers()
    assert [(t.contact, t.path, t.outgoing) for t in sent] == [
        ("bob", "/home/alice/a.pdf", True), ("bob", "/home/alice/b c.txt", True)]
    c = card(files, sent[0].id)
    assert c.actions() == ["Cancel"] and "to bob" in c.meta.cget("text")
    files.backend.set_transfer(sent[0].id, state="active")
    c._actions["Cancel"].invoke()
    assert files.backend.transfers()[0].state == "cancelled" and c.actions() == []

def test_the_file_chooser_runs_in_a_process_of_its_own(files):
    """Tk's dialog, whose nested event loop would stop the reactor, in a child process:
    the window goes on while it is open, and gets the paths when it closes."""
    import subprocess
    from kadchat.ui.gui.filechooser import choose_files
    files.start()
    tab = files.window.open_conversation("bob")
    picked = []
    choose_files(tab, picked.append, title="pick one")
    search = ["xdotool", "search", "--sync", "--name", "^pick one$"]
    env = dict(os.environ, DISPLAY=files.display.display)
    (window,) = subprocess.run(search, env=env, capture_output=True, text=True, timeout=20).stdout.split()
    subprocess.run(["xdotool", "windowfocus", "--sync", window, "type", "--delay", "5",
                    str(files.tmp)], env=env, check=True, timeout=20)
    (files.tmp / "chosen.txt").write_text("x")
    subprocess.run(["xdotool", "type", "--delay", "5", "/chosen.txt"], env=env, check=True, timeout=20)
    subprocess.run(["xdotool", "key", "Return"], env=env, check=True, timeout=20)
    files.wait_until(lambda: picked, timeout=20)
    assert picked == [[str(files.tmp / "chosen.txt")]]


def test_a_file_the_backend_refuses_says_why(files, monkeypatch):
    files.start()
    tab = files.window.open_conversation("bob")

    def refuse(name, path):
        raise UserError("bob is reached through a relay: files over 10.0 MB can't be sent")
    monkeypatch.setattr(files.backend, "send_file", refuse)
    files.chosen.append("/tmp/big.iso")
    tab.attach_button.invoke()
    assert tab.error.cget("text") == "bob is reached through a relay: files over 10.0 MB can't be sent"
    assert tab.cards == {}


def test_dropped_files_are_offered(files):
    files.start()
    tab = files.window.open_conversation("bob")
    assert tab.drops  # tkdnd loaded into this Tk: the tab is a drop target
    paths = dropped_paths(tab, "{/tmp/with space.png} /tmp/plain.txt")
    assert paths == ["/tmp/with space.png", "/tmp/plain.txt"]
    tab.send_files(paths)
    assert [t.name for t in files.backend.transfers()] == ["with space.png", "plain.txt"]


def test_cards_survive_the_history_being_drawn_again(files):
    files.backend.past("bob", False, "photo coming", NOW - 60, "received")
    files.start()
    tab = files.window.open_conversation("bob")
    path = files.tmp / "p.png"
    Image.new("RGB", (64, 48), (0, 0, 255)).save(path)
    offer = files.backend.offer_file("bob", "p.png", 1000)
    files.backend.set_transfer(offer.id, state="done", done=1000, path=str(path))
    c = card(files, offer.id)
    files.wait_until(lambda: c.thumbnail is not None)
    tab._render()
    again = card(files, offer.id)
    assert again is not c and again.winfo_ismapped() and again.thumbnail is c.thumbnail


def test_a_reopened_tab_shows_its_transfers(files):
    files.start()
    offer = files.backend.offer_file("bob", "x.bin", 10)
    files.window.close_conversation("bob")
    tab = files.window.open_conversation("bob")
    assert list(tab.cards) == [offer.id]


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_screenshot_of_transfers(display, tmp_path, mode):
    clock = Clock()
    gui = Gui(display, geometry="1280x800", mode=mode, opener=print, chooser=lambda parent, done: None)
    try:
        gui.window.files._now = clock
        gui.backend.add("bob", presence="connected", route="direct")
        gui.backend.past("bob", False, "here are the holiday photos", NOW - 120, "received")
        gui.backend.past("bob", True, "lovely, send the rest too", NOW - 60, "delivered")
        gui.start()
        tab = gui.window.open_conversation("bob")
        photo = tmp_path / "beach.jpg"
        image = Image.linear_gradient("L").resize((640, 480)).convert("RGB")
        image.save(photo)
        done = gui.backend.offer_file("bob", "beach.jpg", photo.stat().st_size)
        gui.backend.set_transfer(done.id, state="done", done=done.size, path=str(photo))
        active = gui.backend.offer_file("bob", "holiday-video-2023-11-14.mp4", 48_000_000)
        gui.backend.set_transfer(active.id, state="active", done=12_000_000)
        clock.now += 2
        gui.backend.set_transfer(active.id, done=18_000_000)
        gui.backend.offer_file("bob", "itinerary.pdf", 240_000)
        tab.send_files([str(photo)])
        gui.wait_until(lambda: tab.cards[done.id].thumbnail is not None)
        gui.update()
        last = tab.cards[max(tab.cards)]
        assert last.transfer.outgoing and "waiting for an answer" in last.meta.cget("text")
        assert last.winfo_ismapped()  # the view followed the cards to the end
        assert gui.shot(f"gui-{mode}-transfer.png").stat().st_size > 10_000
    finally:
        gui.close()


def test_thumbnails_refuse_what_is_not_a_safe_image(tmp_path):
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"not a png at all")
    assert thumbnail(str(fake)) is None
    text = tmp_path / "real.txt"  # an image, but not named like one
    Image.new("RGB", (8, 8)).save(text, format="PNG")
    assert thumbnail(str(text)) is None
    bomb = tmp_path / "bomb.png"  # 20000 x 20000 black pixels in a few hundred kB
    bomb.write_bytes(png_header(20_000, 20_000))
    assert 20_000 * 20_000 > MAX_PIXELS and thumbnail(str(bomb)) is None
    small = tmp_path / "ok.webp"
    Image.new("RGB", (300, 100)).save(small)
    assert thumbnail(str(small)).size == (240, 80)


def png_header(width, height):
    """A PNG whose header claims the size (the data need not be there: the size check comes first)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


def test_rate_and_time_left():
    clock = Clock()
    meter = RateMeter(clock)
    meter.add(0)
    assert meter.text(0, 1000) == "0 bytes of 1.0 kB"  # no rate from one sample
    clock.now += 10
    meter.add(5_000_000)
    assert meter.text(5_000_000, 20_000_000) == "5.0 MB of 20.0 MB \u00b7 500.0 kB/s \u00b7 30 s left"
    assert [time_left(s) for s in (0.2, 75, 7260)] == ["0 s left", "1 min 15 s left", "2 h 01 min left"]


@pytest.mark.parametrize("broken", ["not installed", "tkdnd won't load"])
def test_without_drag_and_drop_the_tab_still_opens(files, monkeypatch, broken):
    import sys
    import tkinterdnd2

    def refuse(root):
        raise RuntimeError("Unable to load tkdnd library.")
    if broken == "not installed":
        monkeypatch.setitem(sys.modules, "tkinterdnd2", None)  # import raises ImportError
    else:
        monkeypatch.setattr(tkinterdnd2.TkinterDnD, "require", refuse)
    files.start()
    tab = files.window.open_conversation("bob")
    assert tab.drops is False and tab.attach_button.winfo_exists()
