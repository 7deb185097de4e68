"""The console's file commands (kadchat.transfer through the backend), installed into a ConsoleUI.

    /send NAME PATH   offer the file at PATH to NAME
    /accept ID        receive offer #ID (a number, with or without "#") into the downloads folder
    /cancel ID        end transfer #ID, at both ends
    /files            every transfer: #ID, direction, contact, file, progress, state

Output lines:

    * NAME offers FILE (SIZE) as #ID; /accept ID
    * offered FILE (SIZE) to NAME as #ID
    * receiving FILE from NAME as #ID            (and "* sending FILE to NAME as #ID")
    * received FILE from NAME: PATH
    * sent FILE to NAME
    * #ID FILE cancelled: REASON
"""

from __future__ import annotations

import os
import re
from typing import Callable

from kadchat.errors import UserError
from kadchat.model import ChatBackend, Transfer
from kadchat.transfer.sizes import human_size
from kadchat.ui.console_names import split_name, unquote
from kadchat.ui.uitext import one_line

FILE_ID = re.compile(r"^#?(\d+)$")


class FileCommands:
    """`commands()` gives the commands to add; `/accept` with a number means a file,
    anything else goes to `accept_request` (the console's own /accept NAME)."""

    def __init__(self, backend: ChatBackend, write: Callable[[str], None], contact_names: Callable[[], list[str]],
                 accept_request: Callable[[str], None]):
        self._backend = backend
        self._write = write
        self._contact_names = contact_names
        self._accept_request = accept_request
        self._states: dict[int, str] = {}

    def commands(self) -> dict[str, Callable[[str], None]]:
        return {"/send": self._send, "/accept": self._accept, "/cancel": self._cancel, "/files": self._files}

    def _send(self, args: str) -> None:
        name, path = split_name(args, self._contact_names())
        path = os.path.expanduser(unquote(path.strip()))
        if not name or not path:
            raise UserError("usage: /send NAME PATH")
        self._backend.send_file(name, path)

    def _accept(self, args: str) -> None:
        found = FILE_ID.match(args.strip())
        if found is None:
            self._accept_request(args)
            return
        self._backend.accept_file(int(found[1]))

    def _cancel(self, args: str) -> None:
        found = FILE_ID.match(args.strip())
        if found is None:
            raise UserError("usage: /cancel ID (the number /files shows)")
        self._backend.cancel_file(int(found[1]))

    def _files(self, args: str) -> None:
        transfers = self._backend.transfers()
        if not transfers:
            self._write("no file transfers")
        for t in transfers:
            way = "to" if t.outgoing else "from"
            progress = f"{human_size(t.done)} of {human_size(t.size)}"
            sent = f", {human_size(t.sent)} sent" if t.outgoing and t.sent else ""
            reason = f": {t.reason}" if t.reason else ""
            self._write(f"#{t.id} {way} {one_line(t.contact)}: {one_line(t.name)}, {progress}{sent}, {t.state}{reason}")

    # The listener event (ChatListener.transfer).

    def transfer(self, t: Transfer) -> None:
        if self._states.get(t.id) == t.state:
            return
        self._states[t.id] = t.state
        name, contact, size = one_line(t.name), one_line(t.contact), human_size(t.size)
        if t.state == "offered":
            line = (f"* offered {name} ({size}) to {contact} as #{t.id}" if t.outgoing
                    else f"* {contact} offers {name} ({size}) as #{t.id}; /accept {t.id}")
        elif t.state == "active":
            line = (f"* sending {name} to {contact} as #{t.id}" if t.outgoing
                    else f"* receiving {name} from {contact} as #{t.id}")
        elif t.state == "done":
            line = f"* sent {name} to {contact}" if t.outgoing else f"* received {name} from {contact}: {t.path}"
        else:
            line = f"* #{t.id} {name} cancelled: {t.reason or 'cancelled'}"
        self._write(line)
