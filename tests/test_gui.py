"""The Tk window, driven for real on a private Xvfb display.

Screenshots go to artifacts/ (gitignored) at the repository root.
"""

import gc
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from twisted.python.failure import Failure

from kadchat.errors import UserError
from kadchat.model import PRESENCES, Status
from tests.backend_double import BackendDouble
from tests.dbus_helpers import NotificationServer, Service, SessionBus
from tests.xvfb import Xvfb, require_tools, screenshot

pytestmark = pytest.mark.gui

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
NOW = 1_700_000_000.0  # Tue 14 Nov 2023 22:13:20 UTC
FOCUS_THIEF = """
import tkinter
root = tkinter.Tk()
root.title("focus thief")
root.geometry("40x40+1230+750")
root.mainloop()
"""


@pytest.fixture(scope="module")
def display():
    require_tools()
    server = Xvfb(1920, 1080)  # room for the largest screenshot
    saved = {k: os.environ.get(k) for k in ("DISPLAY", "TZ")}
    os.environ["DISPLAY"] = server.display
    os.environ["TZ"] = "UTC"
    time.tzset()
    thief = subprocess.Popen([sys.executable, "-c", FOCUS_THIEF])  # a window of another program
    search = ["xdotool", "search", "--name", "focus thief"]
    deadline = time.monotonic() + 10
    while not subprocess.run(search, capture_output=True).stdout:  # up before the first test
        assert time.monotonic() < deadline, "the focus thief's window did not appear"
        time.sleep(0.05)
    yield server
    thief.terminate()
    thief.wait()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    time.tzset()
    server.stop()


class Recorder:
    """Notifications, as the window hands them over (the D-Bus side: test_gui_notify.py)."""

    def __init__(self, log):
        self.log = log

    def notify(self, key, title, body):
        self.log.append((key, title, body))

    def close(self):
        pass


class Gui:
    """A ChatWindow on a BackendDouble in a fresh Tk root."""

    def __init__(self, display, geometry="960x640", mode="light", window_file=None, notifier=None,
                 **window_options):
        import tkinter as tk

        from kadchat.ui.gui import ChatWindow

        self.display = display
        self.root = tk.Tk()
        if geometry:
            self.root.geometry(geometry + "+0+0")
        self.backend = BackendDouble(now=lambda: NOW)
        self.quits = 0
        self.notifications = []
        self.window = ChatWindow(self.root, self.backend, self._quit, now=lambda: NOW, mode=mode,
                                 window_file=window_file, notifier=notifier or Recorder(self.notifications),
                                 **window_options)

    def _quit(self):
        self.quits += 1

    def close(self):
        """Destroy the window and collect its Tk objects here, in the main thread: a
        notification or colour-scheme thread that happened to run the garbage
        collector would otherwise finalise them there, and Tcl aborts the process."""
        self.root.destroy()
        gc.collect()

    def start(self):
        self.window.start()
        self.update()
        return self

    def update(self):
        self.root.update()

    def wait_until(self, condition, timeout=5.0):
        """For real X input (xdotool), which reaches Tk asynchronously."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for the window")
            self.update()
            time.sleep(0.01)

    def xdotool(self, *args):
        """Real X input events, as a user's mouse and keyboard make them."""
        subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=self.display.display),
                       check=True, timeout=30)

    def row(self, name):
        """(name, preview, time, badge, presence, unread) as the chat list shows them."""
        tree = self.window.contacts.tree
        side, presence, unread = (str(v) for v in tree.item(name, "values"))
        name_line, preview = tree.item(name, "text").split("\n")
        return (name_line.strip(), preview.strip(), *side.split("\n"), presence, unread)

    def history(self, name):
        return self.window.conversations[name].history.get("1.0", "end-1c")

    def focus(self):
        self.root.focus_force()
        self.wait_until(self.window.has_focus)

    def unfocus(self):
        """The desktop's focus to another program's window. (Taken first: without a window
        manager, focus that Tk got from the pointer is not given up on a FocusOut.)"""
        self.focus()
        env = dict(os.environ, DISPLAY=self.display.display)
        search = ["xdotool", "search", "--name", "focus thief"]
        self.wait_until(lambda: subprocess.run(search, env=env, capture_output=True).stdout)
        self.xdotool("search", "--name", "focus thief", "windowfocus", "--sync")
        self.wait_until(lambda: not self.window.has_focus())

    def type_and_press(self, widget, text, key):
        """Generated key events go where the keyboard focus is: make that `widget` first."""
        def focused():
            widget.focus_force()
            self.update()
            return str(self.root.focus_displayof()) == str(widget)
        self.wait_until(focused)
        widget.insert("end", text)
        self.update()
        widget.event_generate(key)
        self.update()

    def shot(self, name):
        self.update()
        return screenshot(self.display.display, self.root.wm_frame(), ARTIFACTS / name)



@pytest.fixture
def gui(display):
    g = Gui(display)
    yield g
    g.close()


def test_title_chat_list_and_status_bar_come_from_the_backend(gui):
    gui.backend.add("bob", presence="connected", unread=3, route="direct")
    gui.backend.add("carol", presence="offline", last_seen=NOW - 7200)
    gui.backend.past("bob", False, "see you\nsoon", NOW - 60, "received")
    gui.backend.set_status(Status(17, ("203.0.113.7", 4000), "direct"))
    gui.start()
    assert gui.root.title() == "(3) kadchat \u2014 alice"
    assert gui.row("bob") == ("bob", "see you / soon", "22:12", "\u2778", "connected", "3")
    assert gui.row("carol") == ("carol", "last seen 20:13", "", "", "last seen 20:13", "")
    assert "unread" in gui.window.contacts.tree.item("bob", "tags")
    assert [l.cget("text") for l in gui.window.status_labels] == [
        "DHT peers: 17", "External address: 203.0.113.7:4000", "Reachability: direct"]


def test_chats_are_ordered_by_their_latest_message_then_by_name(gui):
    for name in ("dave", "Bob", "erin", "zed"):
        gui.backend.add(name)
    gui.backend.past("zed", True, "old", NOW - 500, "delivered")
    gui.backend.past("erin", False, "newer", NOW - 100, "received")
    gui.start()
    assert gui.window.contacts.names() == ["erin", "zed", "Bob", "dave"]
    gui.window._contact_added(gui.backend.add("carol"))
    gui.backend.receive("dave", "newest")
    assert gui.window.contacts.names() == ["dave", "erin", "zed", "Bob", "carol"]
    assert gui.row("dave")[1:4] == ("newest", "22:13", "\u2776")


def test_clicking_a_chat_opens_its_tab_with_history(gui):
    gui.backend.add("bob", unread=1)
    gui.backend.past("bob", True, "hi bob", NOW - 60, "delivered")
    gui.backend.past("bob", False, "hi alice", NOW - 30, "received")
    gui.start()
    tree = gui.window.contacts.tree
    x, y, w, h = tree.bbox("bob")
    gui.xdotool("mousemove", str(tree.winfo_rootx() + x + 40),
                str(tree.winfo_rooty() + y + h // 2), "click", "1")
    gui.wait_until(lambda: gui.window.conversations)
    assert list(gui.window.conversations) == ["bob"]
    assert gui.history("bob") == (
        "Tue 14 Nov 2023\n"
        "You\n"
        "hi bob   22:12 \u2713\u2713\n"
        "bob\n"
        "hi alice   22:12\n")
    assert gui.backend.marked_read == ["bob"]
    assert gui.row("bob")[3:] == ("", "offline", "")
    assert gui.root.title() == "kadchat \u2014 alice"


def test_messages_close_in_time_are_grouped_under_one_name(gui):
    gui.backend.add("bob")
    for offset, text in ((900, "one"), (880, "two"), (100, "three")):  # 13 min quiet before three
        gui.backend.past("bob", False, text, NOW - offset, "received")
    gui.start()
    gui.window.open_conversation("bob")
    assert gui.history("bob").splitlines()[1:] == [
        "bob", "one   21:58", "two   21:58", "bob", "three   22:11"]


def test_enter_sends_and_shift_enter_inserts_a_newline(gui):
    gui.backend.add("bob")
    gui.start()
    tab = gui.window.open_conversation("bob")
    gui.type_and_press(tab.input, "first line", "<Shift-Return>")
    gui.type_and_press(tab.input, "second line", "<Return>")
    assert gui.backend.sent == [("bob", "first line\nsecond line")]
    assert tab.input.get("1.0", "end-1c") == ""
    assert gui.history("bob").endswith("You\nfirst line\nsecond line   22:13 \u2026\n")


def test_real_keystrokes_from_the_x_server_send_a_message(gui):
    gui.backend.add("bob")
    gui.start()
    tab = gui.window.open_conversation("bob")
    tab.input.focus_force()
    gui.update()
    gui.xdotool("type", "--delay", "5", "hello")
    gui.xdotool("key", "shift+Return")
    gui.xdotool("type", "--delay", "5", "bob")
    gui.xdotool("key", "Return")
    gui.wait_until(lambda: gui.backend.sent)
    assert gui.backend.sent == [("bob", "hello\nbob")]


def test_blank_input_is_not_sent(gui):
    gui.backend.add("bob")
    gui.start()
    tab = gui.window.open_conversation("bob")
    gui.type_and_press(tab.input, "  \n ", "<Return>")
    assert gui.backend.sent == []


def test_a_refused_send_shows_the_error_and_keeps_the_text(gui):
    gui.backend.add("bob")
    gui.start()
    tab = gui.window.open_conversation("bob")

    def refuse(name, text):
        raise UserError("Message too long (at most 900 bytes).")

    gui.backend.send_message = refuse
    gui.type_and_press(tab.input, "x" * 1000, "<Return>")
    assert tab.error.cget("text") == "Message too long (at most 900 bytes)."
    assert tab.input.get("1.0", "end-1c") == "x" * 1000


def test_message_state_ticks_update_in_place(gui):
    gui.backend.add("bob")
    gui.start()
    tab = gui.window.open_conversation("bob")
    for text in ("one", "two", "three", "four"):
        gui.type_and_press(tab.input, text, "<Return>")
    first, second, third, fourth = (m.id for m in gui.backend.history("bob"))
    gui.backend.set_state(first, "sent")
    gui.backend.set_state(second, "delivered")
    gui.backend.set_state(first, "delivered")
    gui.backend.set_state(third, "queued")
    gui.backend.set_state(fourth, "stored")
    gui.update()
    assert gui.history("bob").splitlines()[2:] == [
        "one   22:13 \u2713\u2713", "two   22:13 \u2713\u2713",
        "three   22:13 \u25f7\u00a0queued", "four   22:13 \u21e7\u00a0stored"]
    assert gui.row("bob")[1] == "You: four"


def test_failed_messages_can_be_retried_by_link_or_button(gui):
    gui.backend.add("bob")
    gui.start()
    tab = gui.window.open_conversation("bob")
    gui.type_and_press(tab.input, "lost", "<Return>")
    (message,) = gui.backend.history("bob")
    gui.update()
    assert not tab.retry_button.winfo_ismapped()
    gui.backend.set_state(message.id, "failed")
    gui.update()
    assert gui.history("bob").endswith("lost   22:13 \u26a0\u00a0failed\u00a0\u2014\u00a0retry\n")
    assert tab.retry_button.winfo_ismapped()

    start = tab.history.tag_ranges(f"retry:{message.id}")[0]
    x, y, w, h = tab.history.bbox(start)
    gui.xdotool("mousemove", str(tab.history.winfo_rootx() + x + w // 2),
                str(tab.history.winfo_rooty() + y + h // 2), "click", "1")
    gui.wait_until(lambda: gui.backend.retried)
    assert gui.backend.retried == [message.id]
    assert gui.history("bob").endswith("lost   22:13 \u2026\n")
    gui.update()
    assert not tab.retry_button.winfo_ismapped()

    gui.backend.set_state(message.id, "failed")
    tab.retry_button.invoke()
    assert gui.backend.retried == [message.id, message.id]


def test_incoming_message_in_the_visible_tab_of_the_focused_window_is_read(gui):
    gui.backend.add("bob")
    gui.start()
    gui.window.open_conversation("bob")
    gui.focus()
    gui.backend.receive("bob", "line one\nline two", timestamp=NOW + 5)
    gui.update()
    assert gui.history("bob").endswith("bob\nline one\nline two   22:13\n")
    assert gui.row("bob")[3] == ""
    assert gui.backend.contacts()[0].unread == 0
    assert gui.notifications == []


def test_incoming_message_without_an_open_tab_counts_as_unread(gui):
    gui.backend.add("bob")
    gui.backend.add("carol")
    gui.start()
    gui.window.open_conversation("carol")
    gui.focus()
    gui.backend.receive("bob", "psst")
    gui.backend.receive("bob", "psst again")
    gui.update()
    assert gui.row("bob")[3:] == ("\u2777", "offline", "2")
    assert gui.root.title() == "(2) kadchat \u2014 alice"
    assert "psst" not in gui.history("carol")
    gui.window.open_conversation("bob")
    gui.update()
    assert gui.row("bob")[3] == ""
    assert gui.history("bob").count("psst") == 2
    assert gui.root.title() == "kadchat \u2014 alice"


def test_own_message_announced_again_by_the_backend_is_not_duplicated(gui):
    gui.backend.add("bob")
    gui.start()
    tab = gui.window.open_conversation("bob")
    gui.type_and_press(tab.input, "once", "<Return>")
    (message,) = gui.backend.history("bob")
    gui.window.message(message)
    assert gui.history("bob").count("once") == 1


@pytest.mark.parametrize("presence, route, text", [
    ("connected", "relayed", "connected"),
    ("away", "direct", "away"),
    ("seen", None, "in the network"),
    ("offline", None, "last seen 22:13"),
])
def test_presence_changes_update_the_row_and_the_open_tab(gui, presence, route, text):
    gui.backend.add("bob", presence="connected", last_seen=NOW, route="direct")
    gui.start()
    tab = gui.window.open_conversation("bob")
    gui.backend.set_presence("bob", presence, route=route)
    gui.update()
    tree, dot = gui.window.contacts.tree, str(gui.window.look.dots[presence])
    assert gui.row("bob")[1] == text and gui.row("bob")[4] == text  # no message yet: the presence
    assert tree.item("bob", "tags") == (presence,)
    assert str(tree.item("bob", "image")[0]) == dot
    assert tab.presence.cget("text") == " \u00b7 ".join(filter(None, (text, route)))
    assert str(tab.presence.cget("image")[0]) == dot


def test_each_presence_has_a_dot_of_its_own(gui):
    dots = gui.window.look.dots
    assert sorted(dots) == sorted(PRESENCES)
    r = dots["connected"].height() // 2  # the circle fills the image's height
    middle, rim = (r, r), (1, r)  # rim: just inside the circle's left edge
    assert not any(dots[p].transparency_get(*rim) for p in PRESENCES)
    assert len({dots[p].get(*rim) for p in PRESENCES}) == len(PRESENCES)
    # "In the network" is a ring: findable but not connected; the others are filled.
    assert [p for p in PRESENCES if dots[p].transparency_get(*middle)] == ["seen"]


def test_a_delivered_message_shows_the_route_its_session_took(gui):
    gui.backend.add("bob", presence="connected")
    gui.start()
    tab = gui.window.open_conversation("bob")
    gui.type_and_press(tab.input, "hello", "<Return>")
    (message,) = gui.backend.history("bob")
    assert tab.presence.cget("text") == "connected"
    gui.backend._contacts["bob"] = replace(gui.backend._contacts["bob"], route="direct")  # the session came up
    gui.backend.set_state(message.id, "delivered")
    gui.update()
    assert tab.presence.cget("text") == "connected \u00b7 direct"


def test_status_events_update_the_status_bar(gui):
    gui.start()
    assert gui.window.status_labels[1].cget("text") == "External address: unknown"
    gui.backend.set_status(Status(4, ("2001:db8::7", 6881), "relayed"))
    assert [l.cget("text") for l in gui.window.status_labels] == [
        "DHT peers: 4", "External address: [2001:db8::7]:6881", "Reachability: relayed"]


@dataclass(frozen=True)
class StatusWithUnreachable(Status):
    """Status as the setup side extends it (the window reads the field only where it exists)."""

    unreachable: tuple = ()


def test_a_banner_names_the_bootstrap_nodes_that_did_not_answer(gui):
    gui.start()
    assert not gui.window.banner.winfo_ismapped()
    gui.backend.set_status(StatusWithUnreachable(0, None, "unknown",
                                                 unreachable=("192.0.2.7:4000", "[2001:db8::1]:6881")))
    gui.update()
    assert gui.window.banner.winfo_ismapped()
    assert gui.window.banner_text.cget("text").startswith(
        "Can\u2019t reach the network: no answer from 192.0.2.7:4000, [2001:db8::1]:6881.")
    gui.shot("gui-banner.png")
    gui.backend.set_status(StatusWithUnreachable(3, None, "unknown"))
    gui.update()
    assert not gui.window.banner.winfo_ismapped()


def test_my_status_menu_follows_the_backend_and_sets_it_on_a_real_click(gui):
    gui.start()
    menu_button = gui.window.my_status
    assert menu_button.cget("text") == "Online"
    gui.update()
    gui.xdotool("mousemove", str(menu_button.winfo_rootx() + 10),
                str(menu_button.winfo_rooty() + menu_button.winfo_height() // 2), "click", "1")
    menu = menu_button.menu
    gui.wait_until(menu.winfo_ismapped)
    away = menu.index("Away")
    gui.xdotool("mousemove", str(menu.winfo_rootx() + 20),
                str(menu.winfo_rooty() + menu.yposition(away) + 5), "click", "1")
    gui.wait_until(lambda: gui.backend.my_statuses)
    assert gui.backend.my_statuses == ["away"]
    assert menu_button.cget("text") == "Away"  # from the backend's status() call
    assert str(menu_button.cget("image")[0]) == str(gui.window.look.dots["away"])
    gui.backend.set_status(replace(gui.backend.status(), my_status="online"))
    assert menu_button.cget("text") == "Online"
    assert menu_button.choice.get() == "online"


def test_add_contact_dialog_shows_a_bad_card_error_inline(gui):
    gui.start()
    dialog = gui.window.add_contact()
    dialog.card.insert("1.0", "not a card")
    dialog.name.insert(0, "bob")
    dialog.add_button.invoke()
    gui.update()
    assert dialog.winfo_exists()
    assert dialog.error.cget("text") == (
        "That is not a contact card (it should start with 'card:').")
    assert gui.window.contacts.names() == []


def test_add_contact_dialog_adds_the_contact_and_closes(gui):
    gui.start()
    dialog = gui.window.add_contact()
    dialog.card.insert("1.0", "  card:b0b\n")
    dialog.name.insert(0, "bob")
    dialog.note.insert(0, "Alice from the climbing club ")
    dialog.name.focus_force()
    gui.update()
    dialog.name.event_generate("<Return>")
    gui.update()
    assert not dialog.winfo_exists()
    assert gui.window.contacts.names() == ["bob"]
    assert gui.window.contacts.tree.selection() == ("bob",)
    assert gui.backend.notes == {"bob": "Alice from the climbing club"}


def test_my_card_dialog_copies_the_card_to_the_clipboard(gui):
    gui.start()
    dialog = gui.window.show_card()
    assert dialog.text.get("1.0", "end-1c") == "card:alice0123456789"
    dialog.copy_button.invoke()
    assert gui.root.clipboard_get() == "card:alice0123456789"
    assert dialog.copied.cget("text") == "Copied to the clipboard."


def test_refresh_disables_the_button_until_done_then_shows_status(gui):
    gui.backend.add("bob")
    gui.start()
    gui.window.refresh_button.invoke()
    assert str(gui.window.refresh_button.cget("state")) == "disabled"
    assert gui.window.notice.cget("text") == "Refreshing\u2026"
    gui.backend._status = Status(9, ("198.51.100.2", 7000), "direct")
    gui.backend.refreshes[0].callback(None)
    assert str(gui.window.refresh_button.cget("state")) == "normal"
    assert gui.window.notice.cget("text") == ""
    assert gui.window.status_labels[0].cget("text") == "DHT peers: 9"


def test_refresh_failure_is_shown_in_the_status_bar(gui):
    gui.start()
    gui.window.refresh_button.invoke()
    gui.backend.refreshes[0].errback(Failure(UserError("No bootstrap node answered.")))
    assert gui.window.notice.cget("text") == "Refresh failed: No bootstrap node answered."
    assert str(gui.window.refresh_button.cget("state")) == "normal"


def test_a_newcomer_is_told_what_to_do_first_and_the_buttons_do_it(gui):
    gui.start()
    assert gui.window.welcome.cget("text") == "Welcome, alice!"
    assert gui.window.contacts.empty.winfo_ismapped()  # "No chats yet"
    steps = gui.window.steps.cget("text")
    assert "1.  Share your card" in steps and "2.  Add a contact" in steps
    gui.shot("gui-empty.png")
    gui.window.share_button.invoke()
    assert gui.window.dialog.title() == "My card"
    gui.window.add_first_button.invoke()
    assert gui.window.dialog.title() == "Add contact"
    gui.window.dialog.card.insert("1.0", "card:b0b")
    gui.window.dialog.name.insert(0, "bob")
    gui.window.dialog.add_button.invoke()
    assert gui.window.welcome.cget("text") == "No chat open"
    gui.update()
    assert not gui.window.contacts.empty.winfo_ismapped()


def test_closing_the_last_tab_brings_back_the_empty_state(gui):
    gui.backend.add("bob")
    gui.start()
    gui.window.open_conversation("bob")
    gui.update()
    assert not gui.window.placeholder.winfo_ismapped()
    gui.window.close_conversation("bob")
    gui.update()
    assert gui.window.conversations == {}
    assert gui.window.placeholder.winfo_ismapped()
    assert gui.window.welcome.cget("text") == "No chat open"


def test_closing_the_window_calls_on_quit(gui):
    gui.start()
    gui.root.tk.call(gui.root.protocol("WM_DELETE_WINDOW"))
    assert gui.quits == 1


# Scrollback.

def many(gui, count, name="bob"):
    gui.backend.add(name)
    return [gui.backend.past(name, i % 3 == 0, f"message {i}", NOW - 10 * (count - i), "received"
                             if i % 3 else "delivered") for i in range(count)]


def test_older_pages_load_when_scrolled_to_the_top_and_the_view_stays(gui):
    messages = many(gui, 450)
    gui.start()
    tab = gui.window.open_conversation("bob")
    gui.update()
    assert [m.id for m in tab.shown()] == [m.id for m in messages[-200:]]
    assert tab.at_end()
    tab.history.yview_moveto(0.0)
    gui.update()
    gui.update()
    assert len(tab.shown()) == 400
    top = tab.history.index("@0,0")
    assert "message 250" in tab.history.get(f"{top} linestart", f"{top} lineend + 2 lines")
    tab.history.yview_moveto(0.0)
    gui.update()
    gui.update()
    assert [m.id for m in tab.shown()] == [m.id for m in messages] and tab.complete
    assert gui.history("bob").count("message ") == 450


def test_a_message_arriving_while_reading_back_does_not_move_the_view(gui):
    many(gui, 120)
    gui.start()
    tab = gui.window.open_conversation("bob")
    gui.focus()
    tab.history.yview_moveto(0.3)
    gui.update()
    top = tab.history.index("@0,0")
    gui.backend.receive("bob", "something new")
    gui.update()
    assert tab.history.index("@0,0") == top  # the same line at the top
    assert tab.jump.winfo_ismapped()
    assert gui.backend.contacts()[0].unread == 1  # not read while out of view
    tab.jump.invoke()
    gui.update()
    assert tab.at_end() and not tab.jump.winfo_ismapped()
    gui.backend.receive("bob", "and another")  # at the end: the view follows
    gui.update()
    assert tab.at_end() and not tab.jump.winfo_ismapped()


# Search.

def test_search_shows_results_and_opens_the_conversation_at_the_message(gui):
    messages = many(gui, 300)
    gui.backend.add("carol")
    gui.backend.past("carol", False, "a message for search", NOW - 1, "received")
    gui.start()
    box = gui.window.search
    box.entry.focus_force()
    gui.update()
    gui.xdotool("type", "--delay", "5", "message 12")
    gui.xdotool("key", "Return")
    gui.wait_until(lambda: box.results.get_children())
    found = list(box.results.get_children())
    assert found == [m.id for m in reversed(messages) if m.text.startswith("message 12")]
    assert box.results.winfo_ismapped() and not gui.window.contacts.winfo_ismapped()
    gui.shot("gui-search.png")
    box.results.selection_set(messages[12].id)  # older than the first page
    gui.update()
    tab = gui.window.conversations["bob"]
    (start, end) = tab.history.tag_ranges("found")
    assert tab.history.get(start, end) == "message 12"
    assert tab.history.bbox(start) is not None  # on screen
    box.clear()
    gui.update()
    assert gui.window.contacts.winfo_ismapped() and not box.results.winfo_ismapped()


def test_ctrl_f_goes_to_the_search_box(gui):
    gui.backend.add("bob")
    gui.start()
    tab = gui.window.open_conversation("bob")
    gui.type_and_press(tab.input, "", "<Control-f>")
    assert gui.root.focus_get() is gui.window.search.entry


def test_a_search_without_results_says_so(gui):
    gui.backend.add("bob")
    gui.start()
    assert gui.window.search.search("nothing like it") == []
    assert gui.window.search.message.cget("text") == "No messages with \u201cnothing like it\u201d."


# Contact management.

def test_right_click_offers_rename_remove_and_block(gui):
    gui.backend.add("bob")
    gui.start()
    gui.update()
    tree = gui.window.contacts.tree
    x, y, w, h = tree.bbox("bob")
    gui.xdotool("mousemove", str(tree.winfo_rootx() + x + 40), str(tree.winfo_rooty() + y + h // 2),
                "click", "3")
    menu = gui.window.contacts.menu
    gui.wait_until(menu.winfo_ismapped)
    assert [menu.entrycget(i, "label") for i in range(menu.index("end") + 1)] == [
        "Open", "Rename\u2026", "Remove\u2026", "Block\u2026"]
    rename = menu.index("Rename\u2026")
    gui.xdotool("mousemove", str(menu.winfo_rootx() + 20),
                str(menu.winfo_rooty() + menu.yposition(rename) + 5), "click", "1")
    gui.wait_until(lambda: gui.window.dialog is not None)
    assert gui.window.dialog.title() == "Rename bob"


def test_rename_keeps_the_conversation_open_under_the_new_name(gui):
    gui.backend.add("bob")
    gui.backend.add("carol")
    gui.backend.past("bob", False, "hello", NOW - 5, "received")
    gui.start()
    gui.window.open_conversation("bob")
    dialog = gui.window._contact_action("rename", "bob")
    dialog.name.delete(0, "end")
    dialog.name.insert(0, "carol")
    dialog.rename_button.invoke()
    assert dialog.error.cget("text") == "You already have a contact named carol."
    dialog.name.delete(0, "end")
    dialog.name.insert(0, "Bob Big")
    dialog.rename_button.invoke()
    gui.update()
    assert not dialog.winfo_exists()
    assert gui.window.contacts.names() == ["Bob Big", "carol"]
    assert list(gui.window.conversations) == ["Bob Big"]
    assert "hello" in gui.history("Bob Big")


@pytest.mark.parametrize("action, button", [("remove", "Remove"), ("block", "Block")])
def test_remove_and_block_ask_first_then_close_the_chat(gui, action, button):
    gui.backend.add("bob")
    gui.start()
    gui.window.open_conversation("bob")
    dialog = gui.window._contact_action(action, "bob")
    assert dialog.yes_button.cget("text") == button
    dialog.destroy()
    assert gui.window.contacts.names() == ["bob"]  # cancelled: nothing happened
    dialog = gui.window._contact_action(action, "bob")
    dialog.yes_button.invoke()
    gui.update()
    assert gui.window.contacts.names() == [] and gui.window.conversations == {}
    assert gui.backend.blocked == (["card:bob"] if action == "block" else [])


def test_contact_requests_are_shown_with_accept_ignore_and_block(gui):
    gui.start()
    gui.unfocus()
    assert not gui.window.requests.winfo_ismapped()
    for name in ("zoe", "yan", "xi"):
        gui.backend.request(name, note="from the climbing club" if name == "zoe" else "")
    gui.update()
    assert gui.window.requests.winfo_ismapped()
    assert list(gui.window.requests.cards) == ["zoe", "yan", "xi"]
    assert gui.window.steps.cget("text").endswith("asks to chat: answer on the left.")
    assert gui.notifications == [("request:zoe", "Contact request", "zoe wants to chat"),
                                 ("request:yan", "Contact request", "yan wants to chat"),
                                 ("request:xi", "Contact request", "xi wants to chat")]
    gui.shot("gui-requests.png")
    gui.window.requests.buttons["zoe", "accept"].invoke()
    gui.window.requests.buttons["yan", "ignore"].invoke()
    gui.window.requests.buttons["xi", "block"].invoke()
    gui.update()
    assert gui.window.contacts.names() == ["zoe"]
    assert gui.backend.requests() == [] and gui.backend.blocked == ["card:xi"]
    assert not gui.window.requests.winfo_ismapped()


# Look: theme, emoji, window size.

def test_emoji_are_drawn_in_the_colour_emoji_font_where_there_is_one(gui):
    gui.backend.add("bob")
    gui.backend.past("bob", False, "party \U0001F389 time \u2764\ufe0f", NOW - 5, "received")
    gui.start()
    tab = gui.window.open_conversation("bob")
    look = gui.window.look
    if look.emoji_family is None:
        pytest.skip("no colour emoji font (apt package fonts-noto-color-emoji)")
    ranges = tab.history.tag_ranges("emoji")
    drawn = [tab.history.get(a, b) for a, b in zip(ranges[::2], ranges[1::2])]
    assert drawn == ["\U0001F389", "\u2764\ufe0f"]
    assert look.emoji.actual("family") == look.emoji_family


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_the_theme_is_sun_valley_in_the_mode_asked_for(display, mode):
    g = Gui(display, mode=mode)
    try:
        from tkinter import ttk
        assert ttk.Style(g.root).theme_use() == f"sun-valley-{mode}"
        paper = g.window.look.colours.paper
        assert (int(paper[1:3], 16) < 0x80) == (mode == "dark")
    finally:
        g.close()


def test_the_window_size_is_remembered_across_runs(display, tmp_path):
    state = tmp_path / "window.json"
    g = Gui(display, geometry=None, window_file=state)
    try:
        g.start()
        assert (g.root.winfo_width(), g.root.winfo_height()) == (1100, 720)  # on a 1280x800 screen
        g.root.geometry("900x650+30+20")
        g.wait_until(lambda: state.exists())
        g.root.tk.call(g.root.protocol("WM_DELETE_WINDOW"))
    finally:
        g.close()
    assert json.loads(state.read_text())["geometry"].startswith("900x650")
    g = Gui(display, geometry=None, window_file=state)
    try:
        g.update()
        assert (g.root.winfo_width(), g.root.winfo_height()) == (900, 650)
    finally:
        g.close()


# Desktop notifications, on a session bus of the test's own.

@pytest.fixture
def session_bus():
    bus = SessionBus()
    yield bus
    bus.stop()


def test_a_message_while_the_window_is_unfocused_reaches_the_notification_server(display, session_bus):
    from kadchat.ui.gui.notify import Notifier

    server = NotificationServer(session_bus.address)
    notifier = Notifier(bus=session_bus.address)
    g = Gui(display, notifier=notifier)
    try:
        g.backend.add("Bob Big")
        g.start()
        g.unfocus()
        g.backend.receive("Bob Big", "first, while away")
        g.wait_until(lambda: server.shown)
        g.focus()
        g.backend.receive("Bob Big", "second, while looking")
        g.unfocus()
        g.backend.receive("Bob Big", "third \U0001F389")
        g.wait_until(lambda: len(server.shown) == 2)  # in order: the second would come before
        first, third = server.shown
        assert first[:5] == ("kadchat", 0, "", "Bob Big", "first, while away")
        assert third[:5] == ("kadchat", 1, "", "Bob Big", "third \U0001F389")  # replaces the first
        assert first[6]["category"] == ("s", "im.received")
    finally:
        g.root.tk.call(g.root.protocol("WM_DELETE_WINDOW"))  # closes the notifier too
        g.close()
        server.stop()


def test_without_a_session_bus_there_are_no_notifications_and_no_error(display, tmp_path):
    from kadchat.ui.gui.notify import Notifier

    notifier = Notifier(bus=f"unix:path={tmp_path}/no-bus")
    g = Gui(display, notifier=notifier)
    try:
        g.backend.add("bob")
        g.start()
        g.unfocus()
        g.backend.receive("bob", "hello")
        notifier._thread.join(5)  # it gives up on the missing bus and ends
        assert not notifier._thread.is_alive()
        assert "hello" in g.row("bob")[1]
    finally:
        g.close()


def test_the_desktop_dark_setting_is_read_from_the_settings_portal(session_bus, monkeypatch):
    from kadchat.ui.gui.appearance import chosen_mode

    scheme = {"value": 1}
    portal = Service(session_bus.address, "org.freedesktop.portal.Desktop",
                     lambda message: ("v", (("v", ("u", scheme["value"])),)))
    try:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session_bus.address)
        monkeypatch.delenv("KADCHAT_THEME", raising=False)
        assert chosen_mode() == "dark"
        assert portal.calls[0].body == ("org.freedesktop.appearance", "color-scheme")
        scheme["value"] = 2
        assert chosen_mode() == "light"
        assert chosen_mode({"KADCHAT_THEME": "dark"}) == "dark"  # the override asks nobody
        assert len(portal.calls) == 2
    finally:
        portal.stop()


def test_the_window_follows_the_desktop_from_light_to_dark(display, session_bus, monkeypatch):
    from kadchat.ui.gui.style import PALETTES
    from tkinter import ttk

    portal = Service(session_bus.address, "org.freedesktop.portal.Desktop",
                     lambda message: ("v", (("v", ("u", 2)),)))  # 2: prefers light
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session_bus.address)
    monkeypatch.delenv("KADCHAT_THEME", raising=False)
    g = Gui(display, mode=None)
    try:
        g.backend.add("bob")
        g.backend.past("bob", False, "hello", NOW - 5, "received")
        g.start()
        tab = g.window.open_conversation("bob")
        dialog = g.window.add_contact()
        assert ttk.Style(g.root).theme_use() == "sun-valley-light"

        def dark_after_a_signal():  # sent again until the watcher's match rule is in place
            portal.emit("/org/freedesktop/portal/desktop", "org.freedesktop.portal.Settings",
                        "SettingChanged", "ssv", ("org.freedesktop.appearance", "color-scheme", ("u", 1)))
            time.sleep(0.05)
            return ttk.Style(g.root).theme_use() == "sun-valley-dark"
        g.wait_until(dark_after_a_signal, timeout=10)
        dark = PALETTES["dark"]
        assert tab.history.cget("background") == dark.paper
        assert tab.history.tag_cget("them", "background") == dark.bubble_them
        assert dialog.card.cget("background") == dark.paper
        assert str(g.root.cget("background")) == dark.background
        dialog.destroy()
        g.shot("gui-followed-dark.png")
    finally:
        g.root.tk.call(g.root.protocol("WM_DELETE_WINDOW"))
        g.close()
        portal.stop()


# Screenshots, looked at by a person: artifacts/gui-{light,dark}-{size}.png.

def populate(gui):
    b = gui.backend
    b.add("bob", presence="connected", route="direct")
    b.add("carol", presence="away", route="relayed", unread=2)
    b.add("dave", presence="offline", last_seen=NOW - 5 * 3600)
    b.add("Erin Summers", presence="offline", last_seen=NOW - 4 * 86400)
    b.add("Frank", presence="connected", route="direct", unread=1)
    b.add("grace", presence="seen", last_seen=NOW - 90)
    b.set_status(Status(23, ("203.0.113.7", 40123), "direct"))
    b.past("bob", False, "Hi Alice! Are we still on for tomorrow? \U0001F600", NOW - 86400 - 300,
           "received")
    b.past("bob", True, "Yes, 10:00 at the station. \U0001F44D", NOW - 86400 - 240, "delivered")
    b.past("bob", False, "Great. I'll bring the maps.\nAnd the tickets. \U0001F39F\ufe0f", NOW - 600,
           "received")
    b.past("bob", True, "Perfect, see you there. This line is long enough to wrap "
           "around inside the history pane at the smaller window size.", NOW - 540, "delivered")
    b.past("bob", True, "Did you get my last message?", NOW - 120, "failed")
    b.past("bob", True, "Bringing snacks \U0001F36A", NOW - 60, "stored")
    last = b.past("bob", True, "Sending this one now", NOW - 5, "queued")
    b.past("carol", False, "ping", NOW - 30, "received")
    b.past("Frank", False, "Lunch? \U0001F35C", NOW - 3000, "received")
    gui.start()
    b.request("Zoe", note="Hi, it's Zoe from the climbing club")
    gui.window.open_conversation("carol")
    gui.window.open_conversation("bob")
    gui.window.conversations["bob"].input.insert("1.0", "A reply in progress")
    return last


@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("size", ["800x600", "1280x800", "1920x1080"])
def test_screenshot_of_a_busy_window(display, size, mode):
    gui = Gui(display, geometry=size, mode=mode)
    try:
        last = populate(gui)
        path = gui.shot(f"gui-{mode}-{size}.png")
        assert path.stat().st_size > 10_000
        assert (gui.root.winfo_width(), gui.root.winfo_height()) == tuple(map(int, size.split("x")))
        tab = gui.window.conversations["bob"]
        # The newest message, the input row and the status bar are on screen, not squeezed out.
        start = tab.history.tag_ranges(f"text:{last.id}")[0]
        assert tab.history.bbox(start) is not None
        assert tab.send_button.winfo_ismapped() and tab.retry_button.winfo_ismapped()
        assert gui.window.status_labels[2].winfo_ismapped()
        for widget in (*gui.window.status_labels, gui.window.refresh_button,
                       gui.window.add_button, gui.window.card_button, gui.window.my_status):
            assert widget.winfo_width() >= widget.winfo_reqwidth(), widget  # none squeezed
        bottom = tab.retry_button.winfo_rooty() + tab.retry_button.winfo_height()
        assert bottom <= gui.window.status_labels[0].winfo_rooty()
    finally:
        gui.close()


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_screenshot_of_the_dialogs_and_the_first_run(display, mode):
    gui = Gui(display, mode=mode)
    try:
        gui.start()
        gui.shot(f"gui-{mode}-empty.png")
        dialog = gui.window.add_contact()
        dialog.card.insert("1.0", "card:???")
        dialog.name.insert(0, "bob")
        dialog.add_button.invoke()
        gui.update()
        screenshot(gui.display.display, dialog.wm_frame(), ARTIFACTS / f"gui-{mode}-add-contact.png")
        card = gui.window.show_card()
        card.copy_button.invoke()
        gui.update()
        screenshot(gui.display.display, card.wm_frame(), ARTIFACTS / f"gui-{mode}-my-card.png")
    finally:
        gui.close()


def test_screenshot_for_the_readme_at_the_default_size(display):
    """artifacts/gui-readme.png, copied by hand to docs/screenshot.png when the look changes."""
    gui = Gui(display, geometry="1100x720", mode="light")
    try:
        populate(gui)
        gui.window.conversations["bob"].input.delete("1.0", "end")
        gui.window.conversations["bob"].input.insert("1.0", "See you at 10!")
        assert gui.shot("gui-readme.png").stat().st_size > 10_000
    finally:
        gui.close()


def test_a_long_last_message_is_cut_with_an_ellipsis_to_the_column(gui):
    gui.backend.add("bob")
    gui.backend.past("bob", False, "a rather long message " * 5, NOW - 60, "received")
    gui.start()
    gui.update()
    preview = gui.row("bob")[1]
    assert preview.startswith("a rather long") and preview.endswith("\u2026")
    room = gui.window.contacts.tree.column("#0", "width")
    assert gui.window.look.font.measure(preview) < room
