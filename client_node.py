#!/usr/bin/env python3
"""The kadchat client: a Tk window, or with -N a console (see --help)."""

import os
import sys

from twisted.internet import defer, task
from twisted.logger import LogLevel

from config import parse_client_args
from kadchat import datadir
from kadchat.cli import run_main, start_logging
from kadchat.errors import UserError
from kadchat.identity import CARD_FILE, load_or_create
from kadchat.service import ChatService


def warn(message):
    print(f"warning: {message}", file=sys.stderr, flush=True)


def ask_name(prompt):
    if not sys.stdin.isatty():
        raise UserError("no username yet: give one with --name NAME")
    return input(prompt)


def start_console(reactor, service, quit):
    from kadchat.ui.console_terminal import start_console as start

    start(reactor, service, quit)


def start_window(reactor, service, quit):
    import tkinter

    from twisted.internet import tksupport

    from kadchat.ui.gui import ChatWindow
    from kadchat.ui.gui.winstate import WINDOW_FILE

    try:
        root = tkinter.Tk()
    except tkinter.TclError as e:
        raise UserError(f"cannot open a window ({e}); use -N for the console client") from None
    tksupport.install(root)

    def close():
        tksupport.uninstall()
        root.destroy()
        quit()

    ChatWindow(root, service, close, window_file=os.path.join(service.config.data_dir, WINDOW_FILE)).start()


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
    identity = load_or_create(config.data_dir, config.name, ask_name)
    # Without -l only warnings reach the terminal, which the console UI shares.
    start_logging(config.log_file, LogLevel.info if config.log_file else LogLevel.warn)
    print(f"you are {identity.username}; your contact card (give it to your contacts):", flush=True)
    print(f"  {identity.card}", flush=True)
    service = ChatService(reactor, config, identity)
    for warning in service.start():
        warn(warning)
    host, port = service.address
    print(f"listening on {host}:{port}; {CARD_FILE} holds your card", flush=True)

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
    (start_console if config.no_gui else start_window)(reactor, service, quit)
    yield finished


if __name__ == "__main__":
    task.react(run_main, (main, sys.argv[1:]))
