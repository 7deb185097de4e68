"""Issue 5: two real clients chat through their windows, end to end.

One `dedicated_server.py` and two `client_node.py` processes (alice and bob)
whose Tk windows share a private Xvfb display. Everything a user does is a real
X event made by xdotool: clicks, double-clicks, keystrokes. Where to click and
what a window shows is asked of the clients' Tk interpreters with Tk's `send`
(Tk allows it because the X server is ours and takes no remote connections);
what the windows claim is checked against the clients' own files: contacts.txt
and the SQLite history. The clients' desktop notifications go to a notification
server on a session bus of the test's own. Screenshots of the screen at each
step go to artifacts/gui-e2e-*.png.
"""

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client_helpers import wait_for
from tests.dbus_helpers import NotificationServer, SessionBus
from tests.xvfb import Xvfb, require_tools, xwd_to_png

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
WIDTH, HEIGHT = 1600, 700  # two windows side by side
DELIVERED = "\u2713\u2713"  # the tick kadchat.ui.gui.conversation shows for delivered
DAY_LINE = re.compile(r"\w{3} \d{1,2} \w{3} \d{4}")  # "Tue 14 Nov 2023"


def wait_equal(what, probe, expected, timeout=20.0):
    """Poll `probe` until it returns `expected`; on time-out, show the last value."""
    last = []

    def check():
        last[:] = [probe()]
        return last[0] == expected
    try:
        wait_for(what, check, timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}\n  last seen: {last[0]!r}\n  expected:  {expected!r}") from None


class Child:
    """A child process whose stdout and stderr go to files, read by polling."""

    def __init__(self, name, argv, folder, env):
        self.name = name
        self.out = folder / f"{name}.out"
        self.err = folder / f"{name}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=err, env=env, cwd=folder)

    def expect(self, pattern, timeout=15.0):
        """The first match of the regex `pattern` (lines anchored) in the output."""
        def probe():
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}: "
                                     f"{self.err.read_text()}")
            return re.search(pattern, self.out.read_text(), re.MULTILINE)
        return wait_for(f"{self.name} to print {pattern!r}", probe, timeout)

    def stop(self, timeout=15.0):
        """SIGTERM, then SIGKILL if it lingers; returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


# A Tk interpreter in a child process, to `send` with: a Tk in the test process
# would keep its X connection after the display is gone, and Xlib ends the whole
# process at the next X call. One JSON request per line: [app, split, *words]
# runs `send app words` (app null: `words` here); the reply is [ok, value].
SENDER = r"""
import json, sys, tkinter
root = tkinter.Tk()
root.withdraw()
for line in sys.stdin:
    app, split, *words = json.loads(line)
    try:
        value = root.tk.call("send", app, tuple(words)) if app else root.tk.call(*words)
        reply = [True, list(root.tk.splitlist(value)) if split else value]
    except tkinter.TclError as e:
        reply = [False, str(e)]
    print(json.dumps(reply), flush=True)
"""


# The widgets of a class under a widget, depth first: one `send` for the
# whole walk, with only local variables in the other interpreter.
WIDGETS_OF_CLASS = """{top class} {
    set found {}
    set queue [list $top]
    while {[llength $queue]} {
        set queue [lassign $queue widget]
        set queue [concat [winfo children $widget] $queue]
        if {[winfo class $widget] eq $class} {lappend found $widget}
    }
    return $found
}"""


class Desk:
    """The display: real input through xdotool, Tk's `send` through SENDER."""

    def __init__(self, display, bus_address):
        self.display = display
        self.env = dict(os.environ, DISPLAY=display, DBUS_SESSION_BUS_ADDRESS=bus_address)
        self.sender = subprocess.Popen([sys.executable, "-c", SENDER], env=self.env, text=True,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def close(self):
        self.sender.stdin.close()
        try:
            self.sender.wait(10)
        except subprocess.TimeoutExpired:
            self.sender.kill()
            self.sender.wait()

    def tcl(self, app, words, split=False):
        """`send app words` (or `words` in SENDER when app is None): (ok, result)."""
        self.sender.stdin.write(json.dumps([app, split, *words]) + "\n")
        self.sender.stdin.flush()
        reply = self.sender.stdout.readline()
        assert reply, "the Tk sender process ended"
        return json.loads(reply)

    def xdotool(self, *args, check=True):
        result = subprocess.run(["xdotool", *map(str, args)], capture_output=True, text=True,
                                env=self.env, timeout=30)
        if check:
            assert result.returncode == 0, f"xdotool {args}: {result.stderr}"
        return result.stdout.strip()

    def click(self, point, count=1):
        x, y = point
        self.xdotool("mousemove", x, y, "click", "--repeat", count, "--delay", 80, 1)

    def type(self, text):
        self.xdotool("type", "--delay", 5, text)

    def window(self, name):
        """The X window id of `name`'s main window, titled "kadchat \u2014 NAME".

        xdotool's regex does not match the em dash (Tk puts its UTF-8 bytes in
        the Latin-1 WM_NAME), hence `.+`."""
        def probe():  # exit status 1 when nothing matches yet
            return self.xdotool("search", "--name", f"^kadchat .+ {name}$", check=False)
        (window_id,) = wait_for(f"{name}'s window", probe).split()
        return window_id

    def interpreter(self, pid):
        """The Tk interpreter of process `pid`."""
        def probe():
            _, names = self.tcl(None, ["winfo", "interps"], split=True)
            for name in names:
                ok, answer = self.tcl(name, ["pid"])
                if ok and answer == str(pid):  # not ok: the sender itself
                    return name
            return None
        return Remote(self, wait_for(f"the Tk interpreter of process {pid}", probe))

    def shoot(self, name):
        """The whole screen, as artifacts/gui-e2e-NAME.png."""
        xwd = subprocess.run(["xwd", "-silent", "-root", "-display", self.display],
                             check=True, capture_output=True, timeout=30).stdout
        path = ARTIFACTS / f"gui-e2e-{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(xwd_to_png(xwd))
        return path


class Remote:
    """Another process's Tk interpreter: widgets are found and read, never changed."""

    def __init__(self, desk, name):
        self.desk = desk
        self.name = name

    def __call__(self, *words, split=False):
        ok, value = self.desk.tcl(self.name, words, split)
        assert ok, f"{self.name}: {words}: {value}"
        return value

    def words(self, *words):
        return self(*words, split=True)

    def find(self, widget_class, top=".", **options):
        """The widgets of a Tk class under `top` whose options have these values."""
        return [w for w in self.words("apply", WIDGETS_OF_CLASS, top, widget_class)
                if all(self(w, "cget", f"-{k}") == v for k, v in options.items())]

    def one(self, widget_class, top=".", **options):
        (widget,) = wait_for(f"one {widget_class} {options} in {self.name}",
                             lambda: self.find(widget_class, top, **options), timeout=10)
        return widget

    def centre(self, widget, bbox=None):
        """Screen coordinates of the widget's middle, or of a bbox within it."""
        x, y = (int(self("winfo", key, widget)) for key in ("rootx", "rooty"))
        if bbox is None:
            bbox = (0, 0, self("winfo", "width", widget), self("winfo", "height", widget))
        left, top, width, height = map(int, bbox)
        return x + left + width // 2, y + top + height // 2


class Client:
    """One user: the process, its window's Tk interpreter, its files."""

    def __init__(self, name, child, folder, card):
        self.name = name
        self.child = child
        self.folder = folder
        self.card = card
        self.ui = None  # the Remote

    def stored(self):
        """(outgoing, text, state) of every message in the SQLite history."""
        (path,) = self.folder.glob("history-*.sqlite3")
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return db.execute("SELECT outgoing, text, state FROM messages"
                              " ORDER BY timestamp").fetchall()

    def chats(self):
        """The chat list (a Treeview named "chats"; search results are another)."""
        (tree,) = [t for t in self.ui.find("Treeview") if t.endswith(".chats")]
        return tree

    def contact_row(self, name):
        """(presence, unread) as the chat list holds them; None without a row."""
        tree = self.chats()
        if self.ui(tree, "exists", name) != "1":
            return None
        return tuple(self.ui.words(tree, "item", name, "-values"))[1:]

    def conversation(self):
        """The selected tab's history pane and input box."""
        tab = self.ui(self.ui.one("TNotebook"), "select")
        return self.ui.one("Text", tab, state="disabled"), self.ui.one("Text", tab, state="normal")

    def shown(self):
        """The selected tab's lines as shown (names over groups, messages with
        their ticks), without the HH:MM times and the day lines."""
        history, _ = self.conversation()
        text = self.ui(history, "get", "1.0", "end-1c")
        return [re.sub(r"   \d\d:\d\d", "", line) for line in text.splitlines()
                if not DAY_LINE.fullmatch(line)]

    def status_bar(self):
        labels = self.ui.find("TLabel", style="Status.TLabel")
        return [self.ui(label, "cget", "-text") for label in labels]


@pytest.fixture
def desk():
    """The display, and a session bus with a notification server for the clients."""
    require_tools()
    server = Xvfb(WIDTH, HEIGHT)
    bus = SessionBus()
    desk = Desk(server.display, bus.address)
    desk.notifications = NotificationServer(bus.address)
    yield desk
    desk.close()
    desk.notifications.stop()
    bus.stop()
    server.stop()


@pytest.fixture
def children(desk, request, tmp_path):
    """Processes the test started; all are stopped (SIGTERM) at the end."""
    started = []
    failed_before = request.session.testsfailed
    yield started
    if request.session.testsfailed > failed_before:  # keep the evidence
        desk.shoot("failed")
        print(f"screen: {ARTIFACTS / 'gui-e2e-failed.png'}; logs and data: {tmp_path}")
    codes = {child.name: child.stop() for child in reversed(started)}
    for child in started:
        errors = child.err.read_text()
        if errors:
            print(f"--- {child.name} stderr:\n{errors}")
    # SIGTERM is a normal way to end both programs: they say goodbye and exit 0.
    assert all(code == 0 for code in codes.values()), codes


def start_server(tmp_path, children):
    server = Child("server", [sys.executable, str(ROOT / "dedicated_server.py"), "-p", "0",
                              "--host", "127.0.0.1", "-l", str(tmp_path / "server.log")],
                   tmp_path, dict(os.environ, PYTHONUNBUFFERED="1"))
    children.append(server)
    return int(server.expect(r"^listening on 127\.0\.0\.1:(\d+)$")[1])


def start_client(name, tmp_path, desk, port, children, x):
    """`client_node.py` creates the identity; its window is placed at `x`."""
    folder = tmp_path / name
    env = dict(desk.env, PYTHONUNBUFFERED="1")
    child = Child(name, [sys.executable, str(ROOT / "client_node.py"), "--data-dir", str(folder),
                         "--name", name, "--interface", "127.0.0.1", "-r",
                         "-I", "127.0.0.1", "-P", str(port),
                         "-l", str(folder / "client.log")], tmp_path, env)
    children.append(child)
    client = Client(name, child, folder, child.expect(r"^  (kc1\S+)$")[1])
    window_id = desk.window(name)
    client.ui = desk.interpreter(child.process.pid)
    assert client.ui("wm", "title", ".") == f"kadchat \u2014 {name}"
    width, height = WIDTH // 2 - 10, HEIGHT - 40
    desk.xdotool("windowsize", window_id, width, height)
    desk.xdotool("windowmove", window_id, x, 0)
    wait_for(f"{name}'s window to take its place", lambda: client.ui(
        "winfo", "geometry", ".") == f"{width}x{height}+{x}+0")
    return client


def add_contact(desk, client, other, step):
    """Through the "Add contact..." dialog: paste the other's card, name them, Add."""
    ui = client.ui
    desk.click(ui.centre(ui.one("TButton", text="Add contact\u2026")))
    dialog = ui.one("Toplevel")
    wait_for("the dialog on screen", lambda: ui("winfo", "viewable", dialog) == "1")
    assert ui("wm", "title", dialog) == "Add contact"
    desk.click(ui.centre(ui.one("Text", dialog)))
    desk.type(other.card)
    (name_entry,) = [w for w in ui.find("TEntry", dialog) if w.endswith(".name")]
    desk.click(ui.centre(name_entry))
    desk.type(other.name)
    wait_for("the name typed", lambda: ui(name_entry, "get") == other.name)
    desk.shoot(step)
    desk.click(ui.centre(ui.one("TButton", dialog, text="Add")))
    wait_for("the dialog to close", lambda: not ui.find("Toplevel"))
    assert (client.folder / "contacts.txt").read_text().splitlines()[-1] == (
        f"{other.card} {other.name}")
    assert client.contact_row(other.name) is not None


def open_conversation(desk, client, other):
    """Click the contact's row, as a user opens a conversation."""
    tree = client.chats()
    desk.click(client.ui.centre(tree, client.ui.words(tree, "bbox", other.name)))
    wait_for(f"{client.name}'s tab for {other.name}", lambda: client.ui.find("TNotebook") and (
        client.ui(client.ui.one("TNotebook"), "tab", "current", "-text") == other.name))


def say(desk, sender, receiver, *lines):
    """Type a message (Shift+Return between lines), send it with Return, and wait
    until the sender stores it as delivered and the receiver as received."""
    _, entry = sender.conversation()
    desk.click(sender.ui.centre(entry))
    for number, line in enumerate(lines):
        if number:
            desk.xdotool("key", "shift+Return")
        desk.type(line)
    desk.xdotool("key", "Return")
    text = "\n".join(lines)
    wait_equal(f"{sender.name}'s message to be delivered",
               lambda: sender.stored()[-1:], [(1, text, "delivered")])
    assert receiver.stored()[-1] == (0, text, "received")
    assert sender.ui(entry, "get", "1.0", "end-1c") == ""


@pytest.mark.timeout(90)
def test_two_windows_add_each_other_and_chat_both_ways(tmp_path, desk, children):
    port = start_server(tmp_path, children)
    alice = start_client("alice", tmp_path, desk, port, children, x=0)
    bob = start_client("bob", tmp_path, desk, port, children, x=WIDTH // 2)
    desk.shoot("1-started")

    add_contact(desk, alice, bob, "2-alice-adds-bob")
    add_contact(desk, bob, alice, "3-bob-adds-alice")
    for client, other in ((alice, bob), (bob, alice)):
        wait_equal(f"{client.name} to see {other.name} connected",
                   lambda: client.contact_row(other.name), ("connected", ""))
    desk.shoot("4-connected")

    open_conversation(desk, alice, bob)
    say(desk, alice, bob, "Hi bob! Did my card work?")
    wait_equal("alice's window to show it delivered",
               alice.shown, ["You", f"Hi bob! Did my card work? {DELIVERED}"])
    wait_equal("bob's list to count it unread", lambda: bob.contact_row("alice"), ("connected", "1"))
    desk.shoot("5-alice-sent")

    open_conversation(desk, bob, alice)
    assert bob.shown() == ["alice", "Hi bob! Did my card work?"]
    assert bob.contact_row("alice") == ("connected", "")
    say(desk, bob, alice, "Yes, it worked!", "You're online in my list.")
    say(desk, alice, bob, "Great. Lunch at noon tomorrow?")
    say(desk, bob, alice, "Sounds good, see you there!")
    views = {  # each window's tab, line by line; states only on one's own messages
        alice: ["You", f"Hi bob! Did my card work? {DELIVERED}",
                "bob", "Yes, it worked!", "You're online in my list.",
                "You", f"Great. Lunch at noon tomorrow? {DELIVERED}",
                "bob", "Sounds good, see you there!"],
        bob: ["alice", "Hi bob! Did my card work?",
              "You", "Yes, it worked!", f"You're online in my list. {DELIVERED}",
              "alice", "Great. Lunch at noon tomorrow?",
              "You", f"Sounds good, see you there! {DELIVERED}"],
    }
    for client, other in ((alice, bob), (bob, alice)):
        wait_equal(f"{client.name}'s window to show the conversation",
                   client.shown, views[client])
    assert bob.contact_row("alice") == ("connected", "")
    # bob's last message came while alice's window was not focused: unread (and a
    # desktop notification) until she comes back to it.
    assert alice.contact_row("bob") == ("connected", "1")
    # Refresh recounts the DHT peers (the status bar shows the count from join time).
    desk.click(alice.ui.centre(alice.ui.one("TButton", text="Refresh")))
    wait_equal("alice's status bar to count the server and bob",
               lambda: alice.status_bar()[0], "DHT peers: 2")
    desk.click(alice.ui.centre(alice.conversation()[1]))  # back to typing
    wait_equal("alice's window to count it read", lambda: alice.contact_row("bob"), ("connected", ""))
    # Each message reached a window that was not focused (its sender's was): a desktop
    # notification each, titled with the sender's name as the receiver calls them. (Bob
    # may also hear alice's contact request, should it reach him before he adds her.)
    shown = sorted((n[3], n[4]) for n in desk.notifications.shown)
    requests = [n for n in shown if n[0] == "Contact request"]
    assert requests in ([], [("Contact request", "alice wants to chat")])
    assert [n for n in shown if n not in requests] == [
        ("alice", "Great. Lunch at noon tomorrow?"), ("alice", "Hi bob! Did my card work?"),
        ("bob", "Sounds good, see you there!"), ("bob", "Yes, it worked! / You're online in my list.")]
    desk.shoot("6-conversation")

    # bob quits (SIGTERM); his offline notice reaches alice's contact list.
    assert bob.child.stop() == 0
    wait_for("alice to see bob offline",
             lambda: alice.contact_row("bob")[0].startswith("last seen "), timeout=30)
    desk.shoot("7-bob-left")


@pytest.mark.timeout(90)
def test_a_contact_request_is_accepted_in_the_window(tmp_path, desk, children):
    """alice adds bob; bob never pastes her card: her request appears in his window
    with Accept, Ignore and Block, and Accept makes them contacts both ways."""
    port = start_server(tmp_path, children)
    alice = start_client("alice", tmp_path, desk, port, children, x=0)
    bob = start_client("bob", tmp_path, desk, port, children, x=WIDTH // 2)
    add_contact(desk, alice, bob, "request-1-alice-adds-bob")
    accept = bob.ui.one("TButton", text="Accept")
    assert bob.ui.find("TButton", text="Ignore") and bob.ui.find("TButton", text="Block")
    assert bob.ui.find("TLabel", text="alice wants to chat")
    desk.shoot("request-2-bob-is-asked")
    desk.click(bob.ui.centre(accept))
    wait_for("bob's contacts to hold alice", lambda: (bob.folder / "contacts.txt").exists() and (
        (bob.folder / "contacts.txt").read_text().splitlines()[-1:] == [f"{alice.card} alice"]))
    wait_for("the request to go from bob's window", lambda: not bob.ui.find("TButton", text="Accept"))
    for client, other in ((alice, bob), (bob, alice)):
        wait_equal(f"{client.name} to see {other.name} connected",
                   lambda: client.contact_row(other.name), ("connected", ""), timeout=30)
    assert ("Contact request", "alice wants to chat") in [n[3:5] for n in desk.notifications.shown]
    desk.shoot("request-3-accepted")


@pytest.mark.timeout(90)
def test_an_image_is_sent_through_the_windows(tmp_path, desk, children):
    """alice attaches a picture through Tk's file chooser; bob accepts it on its card and
    sees its thumbnail; the bytes in his downloads folder are hers."""
    from PIL import Image
    photo = tmp_path / "sunset.png"
    Image.linear_gradient("L").resize((400, 300)).convert("RGB").save(photo)
    desk.env["XDG_DOWNLOAD_DIR"] = str(tmp_path / "downloads")  # received files: .../kadchat/
    port = start_server(tmp_path, children)
    alice = start_client("alice", tmp_path, desk, port, children, x=0)
    bob = start_client("bob", tmp_path, desk, port, children, x=WIDTH // 2)
    add_contact(desk, alice, bob, "file-1-alice-adds-bob")
    add_contact(desk, bob, alice, "file-2-bob-adds-alice")
    wait_equal("alice to see bob connected", lambda: alice.contact_row("bob"), ("connected", ""))
    open_conversation(desk, alice, bob)

    desk.click(alice.ui.centre(alice.ui.one("TButton", text="\U0001f4ce Attach\u2026")))
    # The chooser is a process of its own (kadchat.ui.gui.filechooser): found by its title.
    chooser = wait_for("the file chooser", lambda: desk.xdotool("search", "--name", "^Send files$", check=False))
    desk.xdotool("windowfocus", "--sync", chooser.split()[0])
    desk.type(str(photo))  # into its "File names" entry, which has the focus
    desk.xdotool("key", "Return")
    wait_for("the chooser to close", lambda: not desk.xdotool("search", "--name", "^Send files$", check=False))

    # bob's window opens the chat for the offer; he accepts on the card.
    accept = wait_for("the offer's card in bob's window",
                      lambda: bob.ui.find("TButton", text="Accept"), timeout=20)[0]
    desk.shoot("file-3-offered")
    desk.click(bob.ui.centre(accept))
    received = tmp_path / "downloads" / "kadchat" / "sunset.png"
    wait_for("the file to arrive", lambda: received.exists() and received.read_bytes() == photo.read_bytes(),
             timeout=30)
    wait_for("Open and Show in folder on bob's card",
             lambda: bob.ui.find("TButton", text="Show in folder"), timeout=10)
    thumbnails = lambda: [w for w in bob.ui.find("TLabel")  # noqa: E731 (a card's picture)
                          if "transfercard" in w and bob.ui(w, "cget", "-image")]
    (picture,) = wait_for("the thumbnail in bob's window", thumbnails, timeout=10)
    image = bob.ui(picture, "cget", "-image")
    assert (bob.ui("image", "width", image), bob.ui("image", "height", image)) == ("240", "180")
    wait_for("alice's card to say sent", lambda: any(
        "to bob \u00b7 done" in alice.ui(w, "cget", "-text") for w in alice.ui.find("TLabel")), timeout=10)
    desk.shoot("file-4-received")
