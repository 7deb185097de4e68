#!/usr/bin/env python3
"""The kadchat client: a Tk window, or with -N a console (see --help)."""

from kadchat import interrupts  # first: Ctrl-C while importing exits quietly

import os
import signal
import sys
from dataclasses import replace

from twisted.internet import defer, task
from twisted.logger import LogLevel

from config import parse_client_args
from kadchat import datadir
from kadchat.cli import run_main, start_logging
from kadchat.errors import UserError
from kadchat.files import validate_name
from kadchat.identity import CARD_FILE, has_identity, load_or_create
from kadchat.service import ChatService

NO_TKINTER = ("the window needs tkinter, which is not installed: on Debian/Ubuntu "
              "'sudo apt-get install python3-tk' (or use -N for the console client)")


def warn(message):
    print(f"warning: {message}", file=sys.stderr, flush=True)


def ask_name(prompt):
    """A username typed at the terminal; asks again until it is a valid one."""
    if not sys.stdin.isatty():
        raise UserError("no username yet: give one with --name NAME")
    # The reactor's SIGINT handler only schedules a stop, which input() would not
    # see: Ctrl-C at the prompt is a KeyboardInterrupt here, as in any program.
    reactor_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while True:
            try:
                answer = input(prompt)
            except (EOFError, KeyboardInterrupt):  # Ctrl-D, Ctrl-C
                print(file=sys.stderr)
                raise UserError("no username chosen; nothing was created") from None
            try:
                return validate_name(answer)
            except UserError as e:
                print(f"{e}; try again", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGINT, reactor_handler)


def start_console(reactor, service, quit):
    from kadchat.ui.console_terminal import start_console as start

    start(reactor, service, quit)


def open_root():
    """The Tk root window, hidden until the chat window fills it; UserError if there can be none."""
    try:
        import tkinter
    except ImportError:
        raise UserError(NO_TKINTER) from None
    from twisted.internet import tksupport

    try:
        root = tkinter.Tk()
    except tkinter.TclError as e:
        raise UserError(f"cannot open a window ({e}); use -N for the console client") from None
    root.withdraw()
    tksupport.install(root)
    return root


def start_window(root, service, quit):
    from twisted.internet import tksupport

    from kadchat.ui.gui import ChatWindow
    from kadchat.ui.gui.winstate import WINDOW_FILE

    def close():
        tksupport.uninstall()
        root.destroy()
        quit()

    root.deiconify()
    ChatWindow(root, service, close, window_file=os.path.join(service.config.data_dir, WINDOW_FILE)).start()
    print(f"kadchat: you are {service.my_name}; your window is open", flush=True)  # demo.py waits for it


@defer.inlineCallbacks
def first_run_in_window(reactor, root, config):
    """Without an identity or --name, the window asks for the username (and a bootstrap node)."""
    if config.name is not None or has_identity(config.data_dir):
        return config
    from kadchat.ui.gui.firstrun import ask_first_run

    asking = ask_first_run(root)
    # Ctrl-C or SIGTERM while the dialog is open: giving up, as closing it is
    # (cancelling it once it has an answer does nothing).
    reactor.addSystemEventTrigger("before", "shutdown", asking.cancel)
    try:
        choice = yield asking
    except defer.CancelledError:
        raise UserError("stopped before a username was chosen; nothing was created") from None
    bootstrap = dict(bootstrap_host=choice.bootstrap[0], bootstrap_port=choice.bootstrap[1]) if choice.bootstrap else {}
    return replace(config, name=choice.name, **bootstrap)


@defer.inlineCallbacks
def main(reactor, argv):
    config = parse_client_args(argv)
    # Private files whoever writes them: our own, but also SQLite's history and
    # its -wal/-shm, the DHT's state file and the log, which take the umask.
    os.umask(datadir.PRIVATE_UMASK)
    datadir.create(config.data_dir)
    datadir.lock(config.data_dir)  # held until this process ends
    exposure = datadir.exposure_warning(config.data_dir)
    if exposure:
        warn(exposure)
    root = None if config.no_gui else open_root()
    if root is not None:
        config = yield first_run_in_window(reactor, root, config)
    identity = load_or_create(config.data_dir, config.name, ask_name)
    # Without -l only warnings reach the terminal, which the console UI shares: one line each.
    start_logging(config.log_file, LogLevel.info if config.log_file else LogLevel.warn, terse=True)
    print(f"you are {identity.username}; your contact card (give it to your contacts):", flush=True)
    print(f"  {identity.card}", flush=True)
    service = ChatService(reactor, config, identity)
    for warning in service.start():
        warn(warning)
    host, port = service.address
    print(f"listening on {host}:{port}; {os.path.join(config.data_dir, CARD_FILE)} holds your card", flush=True)

    finished = defer.Deferred()
    stopping = []

    def quit():
        if not stopping:
            stopping.append(service.stop())
            stopping[0].addBoth(lambda _: finished.called or finished.callback(None))

    def on_shutdown():  # Ctrl-C / SIGTERM: still say goodbye to the swarm
        quit()
        return stopping[0]

    reactor.addSystemEventTrigger("before", "shutdown", on_shutdown)
    if root is None:
        start_console(reactor, service, quit)
    else:
        start_window(root, service, quit)
    yield finished


if __name__ == "__main__":
    interrupts.hand_over()
    task.react(run_main, (main, sys.argv[1:]))
