"""The console (-N): chat through text commands, one event per output line.

Commands::

    /open NAME           lines not starting with / go to NAME from now on
    /msg NAME TEXT       send TEXT to NAME
    /history [NAME] [N]  the last N messages (20 if not given) with NAME, or
                         with the open conversation
    /contacts            list contacts with presence and unread counts
    /add CARD NAME [-- NOTE]  add a contact from their card (one word; quote a
                         card with spaces in it); NOTE goes with the contact
                         request, should they not have you yet
    /rename NAME NEW     give a contact a new name
    /remove NAME         remove a contact (their messages stay in the history)
    /requests            contact requests waiting for an answer
    /accept NAME         add the sender of a contact request as a contact
    /send NAME PATH      offer a file to NAME (kadchat.ui.console_files)
    /accept ID           receive file offer #ID into the downloads folder
    /cancel ID           end file transfer #ID, at both ends
    /files               every file transfer, with progress
    /ignore NAME         drop a contact request (they may ask again)
    /block NAME          a contact or a requester: removed, and nothing from
                         them reaches you again
    /card                print my contact card
    /retry               send again every message of this session that failed
    /refresh             look for contacts again; print the status when done
    /status              DHT peers, external address, reachability (and if you are away)
    /away                tell your contacts you are away
    /back                tell your contacts you are online again
    /quit                leave (at a terminal, with messages not delivered yet:
                         say so first; /quit again leaves, they stay queued)
    /help                this list

NAME may contain spaces: the longest contact name a line starts with is taken,
or the start of exactly one name ("/msg Be hi" for "Ben Big"); quotes settle the
rest ("/msg "Ben" Big news"). A line starting with // sends the text after the
first / to the open conversation.

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
    * request from NAME: NOTE    a contact request (": NOTE" only with a note),
                                 also those waiting at start
    [YYYY-MM-DD HH:MM] NAME: TEXT  and  [YYYY-MM-DD HH:MM] you: TEXT (STATE)
                                 history lines (/history, /open)
    error: ...                   a command could not be done

At a terminal (kadchat.ui.console_terminal) the line being typed stays below
the output, your own messages are echoed ([HH:MM:SS] you to NAME: TEXT), and
the start says who wrote while you were away (* 2 unread from bob: /open bob).

End of input (stdin closed, e.g. the end of a piped script): the console quits
once every message sent in this session is delivered, stored or failed, or after
`eof_grace` seconds, whichever comes first. So `printf '/msg bob hi\\n' | ...`
waits for the delivery receipt instead of dropping the message, but never
hangs when bob is away.

Wiring, done by the caller who owns the reactor (kadchat.ui.console_terminal.start_console)::

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
from kadchat.model import ChatBackend, ContactRequest, GroupMessage, Message, MessageState, MyStatus, Status
from kadchat.ui import console_groups
from kadchat.ui.console_files import FileCommands
from kadchat.ui.console_names import resolve, split_name, unquote
from kadchat.ui.uitext import (PRESENCE_WORDS, clock_time, date_and_minute, one_line, presence_text,
                               status_parts)
from kademlia.timers import cancel

_HELP_BLOCKS = __doc__.split("Commands::")[1].split("Output lines")[0].strip("\n").split("\n\n")
HELP = "\n\n".join(textwrap.dedent(block) for block in _HELP_BLOCKS)  # the commands, then NAME
SETTLED = (MessageState.DELIVERED, MessageState.STORED, MessageState.FAILED)
FOR = (MessageState.QUEUED, MessageState.STORED)  # "(stored for bob)": not with bob yet
HISTORY_LINES = 20  # /history without N
OPEN_LINES = 10  # history shown by /open
COMMANDS = tuple(dict.fromkeys(line.split()[0] for line in _HELP_BLOCKS[0].splitlines() if line.strip().startswith("/")))
HELP += "\n\n" + console_groups.HELP
COMMANDS += console_groups.COMMANDS
NO_CONVERSATION = "no conversation open: /open NAME first (or /msg NAME TEXT)"


class ConsoleUI:
    """Turns command lines into backend calls and listener events into lines.

    `interactive`: a person at a terminal (kadchat.ui.console_terminal): own
    messages are echoed, /quit warns once about messages not delivered yet,
    `show_prompt(text)` is told the prompt for the open conversation and
    `show_names(contacts, requests)` the names Tab completes to.
    Otherwise the output is what scripts read, line for line."""

    log = Logger()

    def __init__(
        self,
        backend: ChatBackend,
        write: Callable[[str], None],
        on_quit: Callable[[], None],
        clock: IReactorTime,
        eof_grace: float = 15.0,
        interactive: bool = False,
        show_prompt: Callable[[str], None] = lambda text: None,
        show_names: Callable[[list[str], list[str]], None] = lambda contacts, requests: None,
    ):
        self._backend = backend
        self._write = write
        self._on_quit = on_quit
        self._clock = clock
        self._eof_grace = eof_grace
        self._interactive = interactive
        self._show_prompt = show_prompt
        self._show_names = show_names
        self._own: dict[str, Message] = {}  # this session's messages, latest state
        self._earlier: dict[str, Message] = {}  # undelivered ones of earlier runs: their receipts show too
        self._open: str | None = None  # the conversation plain text goes to
        self._quit_timer = None
        self._quit_warned = False
        self._quitting = False
        self._commands = {
            "/open": self._open_conversation,
            "/msg": self._msg,
            "/history": self._history,
            "/contacts": self._contacts,
            "/add": self._add,
            "/rename": self._rename,
            "/remove": self._remove,
            "/requests": self._requests,
            "/accept": self._accept,
            "/ignore": self._ignore,
            "/block": self._block,
            "/card": self._card,
            "/retry": self._retry,
            "/refresh": self._refresh,
            "/status": self._status,
            "/away": lambda args: self._set_my_status(MyStatus.AWAY),
            "/back": lambda args: self._set_my_status(MyStatus.ONLINE),
            "/quit": self._quit,
            "/help": self._help,
        }
        self._files = FileCommands(backend, write, self._contact_names, self._accept)
        self._commands.update(self._files.commands())
        self.transfer = self._files.transfer  # ChatListener.transfer
        self._groups = console_groups.install(self, backend, write, interactive)  # /group, /groups, /g

    def add_commands(self, commands: dict[str, Callable[[str], None]]) -> None:
        """Commands another module handles (kadchat.ui.console_groups)."""
        self._commands.update(commands)

    def start(self) -> None:
        self._backend.subscribe(self)
        self._earlier = {m.id: m for m in self._backend.undelivered()}
        self._write(f"kadchat: you are {one_line(self._backend.my_name)}; /help lists commands")
        self._guarded("listing contact requests", self._show_waiting_requests)
        if self._interactive:
            self._show_unread()
        self._prompt_changed()
        self._names_changed()

    def _show_waiting_requests(self) -> None:
        for request in self._backend.requests():
            self.contact_request(request)

    def _show_unread(self) -> None:
        for c in sorted(self._backend.contacts(), key=lambda c: c.name.casefold()):
            if c.unread:
                self._write(f"* {c.unread} unread from {one_line(c.name)}: /open {one_line(c.name)}")

    # Input.

    def line_received(self, line: str) -> None:
        line = line.strip()
        if not line or self._quitting:
            return
        if not line.startswith("/") or line.startswith("//"):
            self._guarded("sending", self._say, line.removeprefix("/"))
            return
        word, _, rest = line.partition(" ")
        command = self._commands.get(word)
        if command is None:
            self._error(f"unknown command {one_line(word)!r}; /help lists commands")
            return
        self._guarded(word, command, rest.strip())
        self._names_changed()  # after /add, /rename, /accept...

    def _guarded(self, what: str, call: Callable, *args) -> None:
        try:
            call(*args)
        except UserError as e:
            self._error(str(e))
        except Exception:
            # A backend bug must not end the console: stdin would be lost.
            self.log.failure("{what} failed", what=what)
            self._error(f"{what} failed unexpectedly (details in the log)")

    def input_too_long(self, limit: int) -> None:
        self._error(f"input line longer than {limit} bytes ignored")

    def input_ended(self) -> None:
        if self._quitting:
            return
        if self._interactive:  # Ctrl-D at a terminal: as /quit
            self._quit()
        elif self._all_settled():
            self._quit()
        else:
            self._quit_timer = self._clock.callLater(self._eof_grace, self._quit)

    # Commands.

    def _say(self, text: str) -> None:
        if self._open is None:
            raise UserError(NO_CONVERSATION)
        self._send(self._open, text)

    def _open_conversation(self, args: str) -> None:
        name = self._contact_named(args, "usage: /open NAME")
        self._open = name
        self._prompt_changed()
        self._write(f"* talking to {one_line(name)}: lines not starting with / go there")
        self._show_history(name, OPEN_LINES, quiet=True)

    def _msg(self, args: str) -> None:
        name, text = split_name(args, self._contact_names())
        if not name or not text.strip():
            raise UserError("usage: /msg NAME TEXT")
        self._send(name, text)

    def _send(self, name: str, text: str) -> None:
        message = self._backend.send_message(name, text)
        self._own[message.id] = message
        if self._interactive:
            self._write(f"[{clock_time(message.timestamp)}] you to {one_line(name)}: {one_line(text)}")
        self._show_state(message)

    def _history(self, args: str) -> None:
        typed, _, count = args.rpartition(" ")
        if not count.isdigit():
            typed, count = args, ""
        if typed:
            name = self._contact_named(typed, "usage: /history [NAME] [N]")
        elif self._open is not None:
            name = self._open
        else:
            raise UserError(NO_CONVERSATION.replace("/msg NAME TEXT", "/history NAME"))
        if count and not int(count):
            raise UserError("usage: /history [NAME] [N], N at least 1")
        self._show_history(name, int(count) if count else HISTORY_LINES)

    def _show_history(self, name: str, count: int, quiet: bool = False) -> None:
        messages = self._backend.history(name, limit=count)
        if not messages:
            if not quiet:
                self._write(f"no messages with {one_line(name)} yet")
            return
        count = f"{len(messages)} messages" if len(messages) > 1 else "message"
        self._write(f"-- the last {count} with {one_line(name)} --")
        for m in messages:
            stamp = date_and_minute(m.timestamp)
            if m.outgoing:
                self._write(f"[{stamp}] you: {one_line(m.text)} ({m.state})")
            else:
                self._write(f"[{stamp}] {one_line(m.contact)}: {one_line(m.text)}")
        self._backend.mark_read(name)

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

    def _add(self, args: str) -> None:
        args, _, note = args.partition(" -- ")
        card, name = split_name(args, ())
        if not card or not name.strip():
            raise UserError("usage: /add CARD NAME [-- NOTE]")
        contact = self._backend.add_contact(card, unquote(name.strip()), note.strip())
        self._write(f"added {one_line(contact.name)}")

    def _rename(self, args: str) -> None:
        name, new_name = split_name(args, self._contact_names())
        new_name = unquote(new_name.strip())
        if not name or not new_name:
            raise UserError("usage: /rename NAME NEW")
        contact = self._backend.rename_contact(name, new_name)
        self._renamed(name, contact.name)
        self._write(f"renamed {one_line(name)} to {one_line(contact.name)}")

    def _remove(self, args: str) -> None:
        name = self._contact_named(args, "usage: /remove NAME")
        self._backend.remove_contact(name)
        self._write(f"removed {one_line(name)}; the messages stay in the history")
        self._forget(name)

    def _requests(self, args: str) -> None:
        requests = self._backend.requests()
        if not requests:
            self._write("no contact requests")
        for r in requests:
            note = f": {one_line(r.note)}" if r.note else ""
            self._write(f"{one_line(r.name)}{note} ({date_and_minute(r.received)})")

    def _accept(self, args: str) -> None:
        contact = self._backend.accept_request(self._request_named(args, "usage: /accept NAME"))
        self._write(f"added {one_line(contact.name)}")

    def _ignore(self, args: str) -> None:
        name = self._request_named(args, "usage: /ignore NAME")
        self._backend.ignore_request(name)
        self._write(f"ignored the request from {one_line(name)}")

    def _block(self, args: str) -> None:
        names = self._contact_names() + [r.name for r in self._backend.requests()]
        name = self._named(args, names, "usage: /block NAME")
        self._backend.block(name)
        self._write(f"blocked {one_line(name)}")
        self._forget(name)

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
        if self._interactive and not self._quit_warned:
            self._quit_warned = True
            if self._warn_undelivered():
                return
        self._quitting = True
        self._quit_timer = cancel(self._quit_timer)
        self._on_quit()

    def _warn_undelivered(self) -> bool:
        # Stored ones are in the network, delivered while we are away: only the others need us.
        waiting = [m for m in self._backend.undelivered() if m.state != MessageState.STORED]
        if not waiting:
            return False
        to = ", ".join(sorted({one_line(m.contact) for m in waiting}, key=str.casefold))
        count, verbs = (f"{len(waiting)} messages", "they stay queued and go") if len(waiting) > 1 else (
            "1 message", "it stays queued and goes")
        self._write(f"* {count} not delivered yet (to {to}): {verbs} out when kadchat runs again; "
                    "/quit again leaves")
        return True

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

    def group_message(self, message: GroupMessage) -> None:
        self._groups.group_message(message)

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

    def contact_request(self, request: ContactRequest) -> None:
        note = f": {one_line(request.note)}" if request.note else ""
        self._write(f"* request from {one_line(request.name)}{note}")
        if self._interactive:
            self._write("  answer with /accept NAME, /ignore NAME or /block NAME")
            self._names_changed()

    def contacts_changed(self) -> None:
        # Looked at once the command that may have caused it (/rename) has done its part.
        self._clock.callLater(0, self._check_open_conversation)

    def _check_open_conversation(self) -> None:
        if self._open is not None and self._open not in self._contact_names():
            self._forget(self._open)  # removed or renamed by another UI
        self._names_changed()

    # Helpers.

    def _contact_names(self) -> list[str]:
        return [c.name for c in self._backend.contacts()]

    def _contact_named(self, typed: str, usage: str) -> str:
        return self._named(typed, self._contact_names(), usage)

    def _request_named(self, typed: str, usage: str) -> str:
        return self._named(typed, [r.name for r in self._backend.requests()], usage)

    def _named(self, typed: str, names: list[str], usage: str) -> str:
        if not typed:
            raise UserError(usage)
        name = resolve(typed, names)
        if name is None:
            raise UserError(f"no one named {one_line(typed)!r} here (/contacts, /requests list them)")
        return name

    def _renamed(self, old: str, new: str) -> None:
        for messages in (self._own, self._earlier):
            for key, m in messages.items():
                if m.contact == old:
                    messages[key] = replace(m, contact=new)
        if self._open == old:
            self._open = new
            self._prompt_changed()

    def _forget(self, name: str) -> None:
        if self._open == name:
            self._open = None
            self._prompt_changed()
            self._write(f"* {one_line(name)} is no longer a contact; no conversation open")

    def _names_changed(self) -> None:
        if self._interactive:
            self._guarded("listing names", lambda: self._show_names(
                self._contact_names(), [r.name for r in self._backend.requests()]))

    def _prompt_changed(self) -> None:
        self._show_prompt(f"{one_line(self._open)}> " if self._open else "> ")

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
