"""The Tk window, driven for real on a private Xvfb display.

Screenshots go to artifacts/ (gitignored) at the repository root.
"""

import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from twisted.python.failure import Failure

from kadchat.errors import UserError
from kadchat.model import PRESENCES, Status
from tests.backend_double import BackendDouble
from tests.xvfb import Xvfb, require_tools, screenshot

pytestmark = pytest.mark.gui

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
NOW = 1_700_000_000.0  # Tue 14 Nov 2023 22:13:20 UTC


@pytest.fixture(scope="module")
def display():
    require_tools()
    server = Xvfb(1280, 800)
    saved = {k: os.environ.get(k) for k in ("DISPLAY", "TZ")}
    os.environ["DISPLAY"] = server.display
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield server
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    time.tzset()
    server.stop()


class Gui:
    """A ChatWindow on a BackendDouble in a fresh Tk root."""

    def __init__(self, display, geometry="960x640"):
        import tkinter as tk

        from kadchat.ui.gui import ChatWindow

        self.display = display
        self.root = tk.Tk()
        self.root.geometry(geometry + "+0+0")
        self.backend = BackendDouble(now=lambda: NOW)
        self.quits = 0
        self.window = ChatWindow(self.root, self.backend, self._quit, now=lambda: NOW)

    def _quit(self):
        self.quits += 1

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
        tree = self.window.contacts.tree
        return tree.item(name, "text").strip(), *tree.item(name, "values")

    def history(self, name):
        return self.window.conversations[name].history.get("1.0", "end-1c")

    def type_and_press(self, widget, text, key):
        widget.focus_force()
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
    g.root.destroy()


def test_title_contacts_and_status_bar_come_from_the_backend(gui):
    gui.backend.add("bob", presence="connected", unread=3, route="direct")
    gui.backend.add("carol", presence="offline", last_seen=NOW - 7200)
    gui.backend.set_status(Status(17, ("203.0.113.7", 4000), "direct"))
    gui.start()
    assert gui.root.title() == "kadchat \u2014 alice"
    assert gui.row("bob") == ("bob", "connected", "3")
    assert gui.row("carol") == ("carol", "last seen 20:13", "")
    assert "unread" in gui.window.contacts.tree.item("bob", "tags")
    assert [l.cget("text") for l in gui.window.status_labels] == [
        "DHT peers: 17", "External address: 203.0.113.7:4000", "Reachability: direct"]


def test_contacts_are_listed_in_name_order_including_later_additions(gui):
    for name in ("dave", "Bob", "erin"):
        gui.backend.add(name)
    gui.start()
    gui.window._contact_added(gui.backend.add("carol"))
    assert gui.window.contacts.names() == ["Bob", "carol", "dave", "erin"]


def test_double_clicking_a_contact_opens_its_tab_with_history(gui):
    gui.backend.add("bob", unread=1)
    gui.backend.past("bob", True, "hi bob", NOW - 60, "delivered")
    gui.backend.past("bob", False, "hi alice", NOW - 30, "received")
    gui.start()
    tree = gui.window.contacts.tree
    x, y, w, h = tree.bbox("bob")
    gui.xdotool("mousemove", str(tree.winfo_rootx() + x + 20),
                str(tree.winfo_rooty() + y + h // 2), "click", "--repeat", "2", "1")
    gui.wait_until(lambda: gui.window.conversations)
    assert list(gui.window.conversations) == ["bob"]
    assert gui.history("bob") == (
        "\u2014 Tue 14 Nov 2023 \u2014\n"
        "[22:12:20] You: hi bob  delivered\u00a0\u2713\n"
        "[22:12:50] bob: hi alice\n")
    assert gui.backend.marked_read == ["bob"]
    assert gui.row("bob") == ("bob", "offline", "")


def test_enter_sends_and_shift_enter_inserts_a_newline(gui):
    gui.backend.add("bob")
    gui.start()
    tab = gui.window.open_conversation("bob")
    gui.type_and_press(tab.input, "first line", "<Shift-Return>")
    gui.type_and_press(tab.input, "second line", "<Return>")
    assert gui.backend.sent == [("bob", "first line\nsecond line")]
    assert tab.input.get("1.0", "end-1c") == ""
    assert gui.history("bob").endswith(
        "[22:13:20] You: first line\nsecond line  sending\u2026\n")


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


def test_message_states_update_in_place(gui):
    gui.backend.add("bob")
    gui.start()
    tab = gui.window.open_conversation("bob")
    gui.type_and_press(tab.input, "one", "<Return>")
    gui.type_and_press(tab.input, "two", "<Return>")
    first, second = (m.id for m in gui.backend.history("bob"))
    gui.backend.set_state(first, "sent")
    gui.backend.set_state(second, "delivered")
    gui.backend.set_state(first, "delivered")
    gui.update()
    assert gui.history("bob").splitlines()[1:] == [
        "[22:13:20] You: one  delivered\u00a0\u2713",
        "[22:13:20] You: two  delivered\u00a0\u2713",
    ]


def test_failed_messages_can_be_retried_by_link_or_button(gui):
    gui.backend.add("bob")
    gui.start()
    tab = gui.window.open_conversation("bob")
    gui.type_and_press(tab.input, "lost", "<Return>")
    (message,) = gui.backend.history("bob")
    assert str(tab.retry_button.cget("state")) == "disabled"
    gui.backend.set_state(message.id, "failed")
    gui.update()
    assert gui.history("bob").endswith("You: lost  failed\u00a0\u2014\u00a0retry\n")
    assert str(tab.retry_button.cget("state")) == "normal"

    start = tab.history.tag_ranges(f"retry:{message.id}")[0]
    x, y, w, h = tab.history.bbox(start)
    gui.xdotool("mousemove", str(tab.history.winfo_rootx() + x + w // 2),
                str(tab.history.winfo_rooty() + y + h // 2), "click", "1")
    gui.wait_until(lambda: gui.backend.retried)
    assert gui.backend.retried == [message.id]
    assert gui.history("bob").endswith("You: lost  sending\u2026\n")
    assert str(tab.retry_button.cget("state")) == "disabled"

    gui.backend.set_state(message.id, "failed")
    tab.retry_button.invoke()
    assert gui.backend.retried == [message.id, message.id]


def test_incoming_message_in_the_visible_tab_is_shown_and_read(gui):
    gui.backend.add("bob")
    gui.start()
    gui.window.open_conversation("bob")
    gui.backend.receive("bob", "line one\nline two", timestamp=NOW + 5)
    gui.update()
    assert gui.history("bob").endswith("[22:13:25] bob: line one\nline two\n")
    assert gui.row("bob")[2] == ""
    assert gui.backend.contacts()[0].unread == 0


def test_incoming_message_without_an_open_tab_counts_as_unread(gui):
    gui.backend.add("bob")
    gui.backend.add("carol")
    gui.start()
    gui.window.open_conversation("carol")
    gui.backend.receive("bob", "psst")
    gui.backend.receive("bob", "psst again")
    gui.update()
    assert gui.row("bob")[2] == "2"
    assert "unread" in gui.window.contacts.tree.item("bob", "tags")
    assert "psst" not in gui.history("carol")
    gui.window.open_conversation("bob")
    gui.update()
    assert gui.row("bob")[2] == ""
    assert gui.history("bob").count("bob: psst") == 2


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
    assert gui.row("bob")[1] == text
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
    gui.shot("gui-away.png")
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
    dialog.name.focus_force()
    gui.update()
    dialog.name.event_generate("<Return>")
    gui.update()
    assert not dialog.winfo_exists()
    assert gui.window.contacts.names() == ["bob"]
    assert gui.window.contacts.tree.selection() == ("bob",)


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


def test_closing_the_last_tab_brings_back_the_placeholder(gui):
    gui.backend.add("bob")
    gui.start()
    gui.window.open_conversation("bob")
    gui.update()
    assert not gui.window.placeholder.winfo_ismapped()
    gui.window.close_conversation("bob")
    gui.update()
    assert gui.window.conversations == {}
    assert gui.window.placeholder.winfo_ismapped()
    gui.shot("gui-no-conversation.png")


def test_closing_the_window_calls_on_quit(gui):
    gui.start()
    gui.root.tk.call(gui.root.protocol("WM_DELETE_WINDOW"))
    assert gui.quits == 1


def populate(gui):
    b = gui.backend
    b.add("bob", presence="connected", route="direct")
    b.add("carol", presence="away", route="relayed", unread=2)
    b.add("dave", presence="offline", last_seen=NOW - 5 * 3600)
    b.add("erin", presence="offline", last_seen=NOW - 4 * 86400)
    b.add("Frank", presence="connected", route="direct", unread=1)
    b.add("grace", presence="seen", last_seen=NOW - 90)
    b.set_status(Status(23, ("203.0.113.7", 40123), "direct"))
    b.past("bob", False, "Hi Alice! Are we still on for tomorrow?", NOW - 86400 - 300,
           "received")
    b.past("bob", True, "Yes, 10:00 at the station.", NOW - 86400 - 240, "delivered")
    b.past("bob", False, "Great. I'll bring the maps.\nAnd the tickets.", NOW - 600,
           "received")
    b.past("bob", True, "Perfect, see you there. This line is long enough to wrap "
           "around inside the history pane at the smaller window size.", NOW - 540,
           "delivered")
    failed = b.past("bob", True, "Did you get my last message?", NOW - 120, "failed")
    b.past("bob", True, "Sending this one now", NOW - 5, "sending")
    b.past("carol", False, "ping", NOW - 30, "received")
    gui.start()
    gui.window.open_conversation("carol")
    gui.window.open_conversation("bob")
    gui.window.conversations["bob"].input.insert("1.0", "A reply in progress")
    gui.window.contacts.select("bob")
    return failed


@pytest.mark.parametrize("size", ["800x600", "1280x800"])
def test_screenshot_of_a_busy_window(display, size):
    gui = Gui(display, geometry=size)
    try:
        populate(gui)
        path = gui.shot(f"gui-{size}.png")
        assert path.stat().st_size > 10_000
        assert gui.root.winfo_width() == int(size.split("x")[0])
        tab = gui.window.conversations["bob"]
        # The input row and status bar must be on screen, not squeezed out.
        assert tab.send_button.winfo_ismapped() and tab.retry_button.winfo_ismapped()
        assert gui.window.status_labels[2].winfo_ismapped()
        for widget in (*gui.window.status_labels, gui.window.refresh_button,
                       gui.window.add_button, gui.window.card_button, gui.window.my_status):
            # none squeezed by the others
            assert widget.winfo_width() >= widget.winfo_reqwidth(), widget
        bottom = tab.retry_button.winfo_rooty() + tab.retry_button.winfo_height()
        assert bottom <= gui.window.status_labels[0].winfo_rooty()
    finally:
        gui.root.destroy()


def test_screenshot_of_the_dialogs(gui):
    gui.start()
    dialog = gui.window.add_contact()
    dialog.card.insert("1.0", "card:???")
    dialog.name.insert(0, "bob")
    dialog.add_button.invoke()
    gui.update()
    screenshot(gui.display.display, dialog.wm_frame(), ARTIFACTS / "gui-add-contact.png")
    card = gui.window.show_card()
    card.copy_button.invoke()
    gui.update()
    screenshot(gui.display.display, card.wm_frame(), ARTIFACTS / "gui-my-card.png")
