"""The console's group commands (issue 17); `install(ui)` adds them to a ConsoleUI.

Commands::

    /group new NAME             create group NAME (no spaces); you are its admin
    /group add NAME CONTACT     add a contact to the group (admins)
    /group remove NAME MEMBER   remove a member: they get nothing sent after it (admins)
    /group leave NAME           leave the group (its history stays)
    /group history NAME [N]     the last N (20) messages, in the order every member sees
    /groups                     list groups with their members
    /g NAME TEXT                send TEXT to the group

Output lines::

    [HH:MM:SS] GROUP/AUTHOR: TEXT   a received group message (your own, at a terminal)
    (posted to GROUP)               your message is stored and on its way (scripts)
      [YYYY-MM-DD HH:MM] GROUP/AUTHOR: TEXT   /group history lines, then "* end of GROUP"
    GROUP: A, B, C (admin A)        /groups; "GROUP (left): ..." once you are out
"""

from __future__ import annotations

import textwrap

from kadchat.errors import UserError
from kadchat.model import GroupMessage
from kadchat.ui.uitext import clock_time, date_and_minute, one_line

HISTORY_LINES = 20
HELP = textwrap.dedent(__doc__.split("Commands::")[1].split("Output lines")[0].strip("\n"))
COMMANDS = ("/group", "/groups", "/g")


class GroupCommands:
    def __init__(self, backend, write, interactive):
        self._backend = backend
        self._write = write
        self._interactive = interactive

    def group(self, args: str) -> None:
        verb, _, rest = args.partition(" ")
        command = {"new": self._new, "add": self._add, "remove": self._remove, "leave": self._leave,
                   "history": self._history}.get(verb)
        if command is None:
            for line in HELP.splitlines():
                self._write(line)
            if verb not in ("", "help"):
                raise UserError(f"unknown /group command {verb!r}")
            return
        command(rest.strip())

    def _new(self, args: str) -> None:
        if not args:
            raise UserError("usage: /group new NAME")
        self._write(f"created group {one_line(self._backend.create_group(args).name)}")

    def _add(self, args: str) -> None:
        group, contact = _two(args, "usage: /group add NAME CONTACT")
        self._backend.add_member(group, contact)
        self._write(f"added {one_line(contact)} to {one_line(group)}")

    def _remove(self, args: str) -> None:
        group, member = _two(args, "usage: /group remove NAME MEMBER")
        self._backend.remove_member(group, member)
        self._write(f"removed {one_line(member)} from {one_line(group)}")

    def _leave(self, args: str) -> None:
        if not args:
            raise UserError("usage: /group leave NAME")
        self._backend.leave_group(args)
        self._write(f"left {one_line(args)}")

    def _history(self, args: str) -> None:
        name, _, count = args.partition(" ")
        if not name or count and not count.isdigit():
            raise UserError("usage: /group history NAME [N]")
        for m in self._backend.group_history(name, int(count) if count else HISTORY_LINES):
            self._write(f"  [{date_and_minute(m.timestamp)}] {one_line(m.group)}/{one_line(m.author)}: {one_line(m.text)}")
        self._write(f"* end of {one_line(name)}")

    def groups(self, args: str) -> None:
        groups = self._backend.groups()
        if not groups:
            self._write("no groups: /group new NAME makes one")
        for g in groups:
            left = "" if g.active else " (left)"
            self._write(f"{one_line(g.name)}{left}: {', '.join(map(one_line, g.members))}"
                        f" (admin {', '.join(map(one_line, g.admins))})")

    def send(self, args: str) -> None:
        group, text = _two(args, "usage: /g NAME TEXT")
        message = self._backend.send_group_message(group, text)
        if self._interactive:
            self.group_message(message)
        else:
            self._write(f"(posted to {one_line(group)})")

    # ChatListener
    def group_message(self, message: GroupMessage) -> None:
        if message.outgoing and not self._interactive:
            return
        self._write(f"[{clock_time(message.timestamp)}] {one_line(message.group)}/{one_line(message.author)}: "
                    f"{one_line(message.text)}")


def _two(args: str, usage: str) -> tuple[str, str]:
    first, _, rest = args.partition(" ")
    if not first or not rest.strip():
        raise UserError(usage)
    return first, rest.strip()


def install(ui, backend, write, interactive) -> GroupCommands:
    """Registers /group, /groups and /g with `ui` (a ConsoleUI); it passes group events to the result."""
    commands = GroupCommands(backend, write, interactive)
    ui.add_commands({"/group": commands.group, "/groups": commands.groups, "/g": commands.send})
    return commands
