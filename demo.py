#!/usr/bin/env python3
"""A kadchat swarm on this one machine, with two users who know each other.

Starts three DHT nodes (`dedicated_server.py`) on 127.0.0.1 and two clients,
alice and bob, whose data lives in ./demo-data/. With a display, both get a
window: chat from one to the other. Without one (or with --console), you are
alice in this terminal and bob is a small bot that answers you.

    python3 demo.py [--console] [--duration SECONDS]
"""

from kadchat import interrupts  # first: Ctrl-C while importing exits quietly

import os
import re
import socket
import sys

from twisted.internet import defer, protocol, task

from kadchat.cli import OneLineParser, run_main
from kadchat.errors import UserError
from kadchat.identity import load_or_create

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.getcwd(), "demo-data")
SERVERS = 3
GREETING = "Hi alice! I'm bob, a demo user on this machine. Type /msg bob <text> to answer me."
INCOMING = re.compile(r"^\[\d\d:\d\d:\d\d\] alice: (.*)$")


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def window_problem():
    """Why this machine cannot show the demo's windows, or None if it can."""
    if not os.environ.get("DISPLAY"):
        return "no display"
    try:
        import tkinter
    except ImportError:
        return "tkinter is missing (Debian/Ubuntu package python3-tk)"
    try:
        tkinter.Tk().destroy()
    except tkinter.TclError as e:
        return f"cannot open a window ({e})"
    return None


class LineProcess(protocol.ProcessProtocol):
    """A child whose stdout lines go to `on_line`; `window_open` fires when a
    window client says its window is open, `ended` when it exits."""

    def __init__(self, on_line=None):
        self.on_line = on_line or (lambda line: None)
        self.window_open = defer.Deferred()
        self.ended = defer.Deferred()
        self._buffer = b""

    def outReceived(self, data):
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            line = line.decode("utf-8", "replace")
            if line.endswith("; your window is open") and not self.window_open.called:
                self.window_open.callback(None)
            self.on_line(line)

    def processEnded(self, reason):
        self.ended.callback(reason.value.exitCode)

    def send(self, line):
        self.transport.write(line.encode("utf-8") + b"\n")


class Demo:
    def __init__(self, reactor, console, duration):
        self.reactor = reactor
        self.console = console
        self.duration = duration
        self.children = []
        self._stopping = None

    def spawn(self, script, args, proto, terminal=False):
        argv = [sys.executable, "-u", os.path.join(HERE, script), *args]
        fds = {0: 0, 1: 1, 2: 2} if terminal else {0: "w", 1: "r", 2: 2}
        self.reactor.spawnProcess(proto, sys.executable, argv, env=os.environ, childFDs=fds)
        self.children.append(proto)
        return proto

    @defer.inlineCallbacks
    def start_swarm(self):
        ports = [free_udp_port() for _ in range(SERVERS)]
        first = f"127.0.0.1:{ports[0]}"
        for i, port in enumerate(ports):
            ready = defer.Deferred()

            def on_line(line, ready=ready):
                if line.startswith("listening on") and not ready.called:
                    ready.callback(None)

            args = ["-p", str(port), "--host", "127.0.0.1", "-l", os.path.join(DATA, f"node{i}.log")]
            self.spawn("dedicated_server.py", args + (["-b", first] if i else []), LineProcess(on_line))
            yield ready
        return ports[0]

    def prepare_users(self, port):
        users = {}
        for name in ("alice", "bob"):
            folder = os.path.join(DATA, name)
            users[name] = (folder, load_or_create(folder, name))
            with open(os.path.join(folder, "bootstrap.txt"), "w") as f:
                f.write(f"# the demo swarm of this run\n127.0.0.1 {port}\n")
        for name, other in (("alice", "bob"), ("bob", "alice")):
            with open(os.path.join(users[name][0], "contacts.txt"), "w") as f:
                f.write(f"{users[other][1].card} {other}\n")
        return users

    def client_args(self, folder, gui):
        args = ["--data-dir", folder, "--interface", "127.0.0.1", "-r", "-l", os.path.join(folder, "client.log")]
        return args if gui else args + ["-N"]

    @defer.inlineCallbacks
    def run(self):
        os.makedirs(DATA, exist_ok=True)
        port = yield self.start_swarm()
        users = self.prepare_users(port)
        print(f"demo swarm: {SERVERS} DHT nodes from 127.0.0.1:{port}; data in {DATA}", flush=True)
        if not self.console:
            clients = [self.spawn("client_node.py", self.client_args(users[name][0], True), LineProcess())
                       for name in ("alice", "bob")]
            for name, client in zip(("alice", "bob"), clients):
                yield defer.DeferredList([client.window_open, client.ended], fireOnOneCallback=True)
                if client.ended.called:
                    raise UserError(f"{name}'s window did not open (see the error above)")
            print("two windows open: alice and bob. Close both to end the demo.", flush=True)
            yield defer.DeferredList([client.ended for client in clients])
            return
        bob = self.spawn("client_node.py", self.client_args(users["bob"][0], False), LineProcess())
        bob.on_line = lambda line: self.bot(bob, line)
        interactive = self.duration is None
        alice_proto = LineProcess() if interactive else LineProcess(lambda line: self.scripted_alice(alice, line))
        alice = self.spawn("client_node.py", self.client_args(users["alice"][0], False), alice_proto, interactive)
        if not interactive:
            yield task.deferLater(self.reactor, self.duration, lambda: None)
            alice.send("/quit")
        yield alice.ended

    def scripted_alice(self, alice, line):
        """Without a person at the keyboard, alice shows her screen and answers once."""
        print(line, flush=True)
        if GREETING in line:
            alice.send("/msg bob hello from alice")

    def bot(self, bob, line):
        """bob greets alice when she connects and answers what she says."""
        if line == "* alice is connected":
            bob.send(f"/msg alice {GREETING}")
        match = INCOMING.match(line)
        if match:
            bob.send(f"/msg alice you said: {match.group(1)}")

    def stop(self):
        """End every child (SIGTERM: each says goodbye); fires once all have exited. Idempotent."""
        if self._stopping is None:
            for child in self.children:
                if child.transport.pid is not None:
                    child.transport.signalProcess("TERM")
            self._stopping = defer.DeferredList([c.ended for c in self.children])
        return self._stopping


def main(reactor, argv):
    parser = OneLineParser(prog="demo.py", description="kadchat on this machine: a swarm and two users.")
    parser.add_argument("--console", action="store_true", help="no windows, even if a display is present")
    parser.add_argument("--duration", type=float, metavar="SECONDS",
                        help="run non-interactively for this long (alice's screen is printed), then stop")
    args = parser.parse_args(argv)
    console = args.console or args.duration is not None
    if not console:
        problem = window_problem()
        if problem:
            console = True
            if problem != "no display":
                print(f"no windows: {problem}; you are alice in this terminal instead", flush=True)
    demo = Demo(reactor, console, args.duration)
    # Ctrl-C or SIGTERM stop the reactor while run() waits: the children still get to say goodbye.
    reactor.addSystemEventTrigger("before", "shutdown", demo.stop)
    ran = defer.maybeDeferred(demo.run)
    # Not a generator: one left suspended at a yield when the reactor stops would
    # be closed at exit ("generator ignored GeneratorExit").
    ran.addBoth(lambda result: demo.stop().addCallback(lambda _: result))
    return ran


if __name__ == "__main__":
    interrupts.hand_over()
    task.react(run_main, (main, sys.argv[1:]))
