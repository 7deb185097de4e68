"""Headless mode: chat through text commands on stdin, one event per output line.

Commands::

    /contacts            list contacts with presence and unread counts
    /msg NAME TEXT       send TEXT to NAME
    /add CARD NAME       add a contact from their card (CARD may contain spaces)
    /card                print my contact card
    /retry               send again every message of this session that failed
    /refresh             look for contacts again; print the status when done
    /status              DHT peers, external address, reachability (and if you are away)
    /away                tell your contacts you are away
    /back                tell your contacts you are online again
    /quit                leave
    /help                this list

Output lines (scripts rely on these exact shapes):

    [HH:MM:SS] NAME: TEXT        a received message, local time of its timestamp;
                                 line breaks in TEXT shown as " / "
    * NAME is connected          presence changes (also "away", "in the network",
                                 "offline")
    * you are away               your own status, after /away (and "online",
                                 after /back)
    (STATE to NAME)              own messages: STATE in sending, sent,
                                 delivered, failed; also (queued for NAME):
                                 only on this computer, NAME not connected,
                                 and (stored for NAME): in the network, you
                                 may quit; messages of earlier runs too
    error: ...                   a command could not be done

End of input (stdin closed, e.g. the end of a piped script): the console quits
once every message sent in this session is delivered, stored or failed, or after
`eof_grace` seconds, whichever comes first. So `printf '/msg bob hi\\n' | ...`
waits for the delivery receipt instead of dropping the message, but never
hangs when bob is away.

Wiring, done by the caller who owns the reactor::

    ui = ConsoleUI(backend, lambda line: io.write(line.encode() + b"\\n"), stop, reactor)
    io = StandardIO(ConsoleProtocol(ui), reactor=reactor)
    ui.start()
"""

from __future__ import annotations

import textwrap
from dataclasses import replace
from typing import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver

from kadchat.errors import UserError
from kadchat.model import ChatBackend, Message, MessageState, MyStatus, Status
from kadchat.ui.uitext import PRESENCE_WORDS, clock_time, one_line, presence_text, status_parts

HELP = textwrap.dedent(__doc__.split("Commands::")[1].split("Output lines")[0]).strip()
SETTLED = (MessageState.DELIVERED, MessageState.STORED, MessageState.FAILED)
FOR = (MessageState.QUEUED, MessageState.STORED)  # "(stored for bob)": not with bob yet


class ConsoleUI:
    """Turns command lines into backend calls and listener events into lines."""

    log = Logger()

    def __init__(
        self,
        backend: ChatBackend,
        write: Callable[[str], None],
        on_quit: Callable[[], None],
        clock: IReactorTime,
        eof_grace: float = 15.0,
    ):
        self._backend = backend
        self._write = write
        self._on_quit = on_quit
        self._clock = clock
        self._eof_grace = eof_grace
        self._own: dict[str, Message] = {}  # this session's messages, latest state
        self._earlier: dict[str, Message] = {}  # undelivered ones of earlier runs: their receipts show too
        self._quit_timer = None
        self._quitting = False
        self._commands = {
            "/contacts": self._contacts,
            "/msg": self._msg,
            "/add": self._add,
            "/card": self._card,
            "/retry": self._retry,
            "/refresh": self._refresh,
            "/status": self._status,
            "/away": lambda args: self._set_my_status(MyStatus.AWAY),
            "/back": lambda args: self._set_my_status(MyStatus.ONLINE),
            "/quit": self._quit,
            "/help": self._help,
        }

    def start(self) -> None:
        self._backend.subscribe(self)
        for contact in self._backend.contacts():
            for m in self._backend.history(contact.name):
                if m.outgoing and m.state != MessageState.DELIVERED:
                    self._earlier[m.id] = m
        self._write(f"kadchat: you are {one_line(self._backend.my_name)}; /help lists commands")

    # Input.

    def line_received(self, line: str) -> None:
        line = line.strip()
        if not line or self._quitting:
            return
        word, _, rest = line.partition(" ")
        command = self._commands.get(word)
        if command is None:
            self._error(f"unknown command {one_line(word)!r}; /help lists commands")
            return
        try:
            command(rest.strip())
        except UserError as e:
            self._error(str(e))
        except Exception:
            # A backend bug must not end the console: stdin would be lost.
            self.log.failure("command {command} failed", command=word)
            self._error(f"{word} failed unexpectedly (details in the log)")

    def input_too_long(self, limit: int) -> None:
        self._error(f"input line longer than {limit} bytes ignored")

    def input_ended(self) -> None:
        if self._quitting:
            return
        if self._all_settled():
            self._quit()
        else:
            self._quit_timer = self._clock.callLater(self._eof_grace, self._quit)

    # Commands.

    def _contacts(self, args: str) -> None:
        contacts = self._backend.contacts()
        if not contacts:
            self._write("no contacts yet; /add CARD NAME adds one")
        now = self._clock.seconds()
        for c in sorted(contacts, key=lambda c: c.name.lower()):
            facts = [presence_text(c, now)]
            if c.route:
                facts.append(c.route)
            if c.unread:
                facts.append(f"{c.unread} unread")
            self._write(f"{one_line(c.name)}: {', '.join(facts)}")

    def _msg(self, args: str) -> None:
        name, _, text = args.partition(" ")
        if not name or not text.strip():
            raise UserError("usage: /msg NAME TEXT")
        message = self._backend.send_message(name, text)
        self._own[message.id] = message
        self._show_state(message)

    def _add(self, args: str) -> None:
        card, _, name = args.rpartition(" ")
        if not card.strip():
            raise UserError("usage: /add CARD NAME")
        contact = self._backend.add_contact(card.strip(), name)
        self._write(f"added {one_line(contact.name)}")

    def _card(self, args: str) -> None:
        self._write(one_line(self._backend.my_card))

    def _retry(self, args: str) -> None:
        failed = [m for m in self._own.values() if m.state == MessageState.FAILED]
        if not failed:
            self._write("nothing to retry")
        for message in failed:
            self._backend.retry(message.id)

    def _refresh(self, args: str) -> None:
        self._write("refreshing...")
        d = self._backend.refresh()
        d.addCallback(lambda _: self._status(""))
        d.addErrback(self._refresh_failed)

    def _refresh_failed(self, failure) -> None:
        if failure.check(UserError):
            self._error(f"refresh failed: {failure.value}")
        else:
            self.log.failure("refresh failed", failure)
            self._error("refresh failed (details in the log)")

    def _status(self, args: str) -> None:
        status = self._backend.status()
        parts = status_parts(status)
        if status.my_status == MyStatus.AWAY:
            parts += ("You: away",)
        self._write("; ".join(parts))

    def _set_my_status(self, status: MyStatus) -> None:
        self._backend.set_my_status(status)
        self._write(f"* you are {status}")

    def _quit(self, args: str = "") -> None:
        if self._quitting:
            return
        self._quitting = True
        if self._quit_timer is not None and self._quit_timer.active():
            self._quit_timer.cancel()
        self._on_quit()

    def _help(self, args: str) -> None:
        for line in HELP.splitlines():
            self._write(line)

    # Listener events (ChatListener).

    def message(self, message: Message) -> None:
        if message.outgoing:
            return
        stamp = clock_time(message.timestamp)
        self._write(f"[{stamp}] {one_line(message.contact)}: {one_line(message.text)}")
        self._backend.mark_read(message.contact)

    def message_state(self, message_id: str, state: str) -> None:
        message = self._own.get(message_id)
        if message is None:
            earlier = self._earlier.get(message_id)
            if earlier is not None and earlier.state != state:  # sent by an earlier run
                self._earlier[message_id] = earlier = replace(earlier, state=state)
                self._show_state(earlier)
            return
        self._own[message_id] = message = replace(message, state=state)
        self._show_state(message)
        if self._quit_timer is not None and self._all_settled():
            self._quit()

    def presence(self, name: str, presence: str) -> None:
        self._write(f"* {one_line(name)} is {PRESENCE_WORDS[presence]}")

    def status(self, status: Status) -> None:
        pass  # shown on demand (/status, /refresh), not on every routing-table change

    # Helpers.

    def _show_state(self, message: Message) -> None:
        word = "for" if message.state in FOR else "to"
        self._write(f"({message.state} {word} {one_line(message.contact)})")

    def _all_settled(self) -> bool:
        return all(m.state in SETTLED for m in self._own.values())

    def _error(self, text: str) -> None:
        self._write(f"error: {one_line(text)}")


class ConsoleProtocol(LineReceiver):
    """Feeds stdin lines (UTF-8, "\\n" or "\\r\\n" ended) to a ConsoleUI."""

    delimiter = b"\n"
    MAX_LENGTH = 65536

    def __init__(self, ui: ConsoleUI):
        self._ui = ui

    def lineReceived(self, line: bytes) -> None:
        self._ui.line_received(line.rstrip(b"\r").decode("utf-8", errors="replace"))

    def lineLengthExceeded(self, line: bytes) -> None:
        # LineReceiver has already dropped its buffer; keep reading instead of
        # closing stdin as it would by default.
        self._ui.input_too_long(self.MAX_LENGTH)

    def connectionLost(self, reason=None) -> None:
        self._ui.input_ended()
