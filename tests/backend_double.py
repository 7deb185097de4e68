"""A test double of the UI backend (docs/INTERFACES.md, `ChatService`).

It keeps contacts and messages in memory, records what the UI asked for, and
lets a test play the network's part: `receive`, `set_presence`, `set_state`,
`set_status` update the state first and then notify listeners, as the real
service does (and as `set_my_status`, a UI's call, does too). Cards are
accepted if they look like "card:<lowercase letters or digits>", a stand-in
for the real card format.
"""

from __future__ import annotations

import re
from dataclasses import replace

from twisted.internet.defer import Deferred

from kadchat.errors import UserError
from kadchat.model import (MESSAGE_STATES, MY_STATUSES, PRESENCES, Contact, ContactPresence,
                           ContactRequest, Group, GroupMessage, Message, MyStatus, Status, Transfer)

_CARD = re.compile(r"card:[a-z0-9]+")


class BackendDouble:
    def __init__(self, my_name="alice", now=lambda: 1_700_000_000.0):
        self.my_name = my_name
        self.my_card = f"card:{my_name}0123456789"
        self._now = now
        self._contacts: dict[str, Contact] = {}
        self._messages: list[Message] = []
        self._status = Status(dht_peers=0, external_address=None, reachability="unknown")
        self._next_id = 1
        self.listeners = []
        self.sent: list[tuple[str, str]] = []  # (name, text) per send_message call
        self.retried: list[str] = []
        self.marked_read: list[str] = []
        self.refreshes: list[Deferred] = []  # fire these to finish a refresh
        self.my_statuses: list[str] = []  # per set_my_status call
        self._requests: dict[str, ContactRequest] = {}
        self._groups: dict[str, Group] = {}
        self._group_messages: list[GroupMessage] = []
        self.blocked: list[str] = []  # cards, per block call
        self.notes: dict[str, str] = {}  # name -> the note given with add_contact
        self._transfers: dict[int, Transfer] = {}

    # The backend interface.

    def contacts(self):
        return list(self._contacts.values())

    def add_contact(self, card_text, name, note=""):
        card_text, name = card_text.strip(), name.strip()
        if not _CARD.fullmatch(card_text):
            raise UserError("That is not a contact card (it should start with 'card:').")
        if not name:
            raise UserError("Give the contact a name.")
        if name in self._contacts:
            raise UserError(f"You already have a contact named {name}.")
        contact = Contact(name, card_text, ContactPresence.OFFLINE, None, 0, None)
        self._contacts[name] = contact
        self.notes[name] = note
        return contact

    def send_message(self, name, text):
        if name not in self._contacts:
            raise UserError(f"No contact named {name}.")
        self.sent.append((name, text))
        return self._store(name, True, text, self._now(), "sending")

    def retry(self, message_id):
        self.retried.append(message_id)
        self.set_state(message_id, "sending")

    def history(self, name, limit=200, before=None):
        messages = [m for m in self._messages if m.contact == name]
        if before is not None:
            messages = messages[:next(i for i, m in enumerate(messages) if m.id == before)]
        return messages[-limit:]

    def search(self, text, limit=50):
        return [m for m in reversed(self._messages) if text.lower() in m.text.lower()][:limit]

    def undelivered(self):
        return [m for m in self._messages if m.outgoing and m.state not in ("delivered", "received")]

    def requests(self):
        return list(self._requests.values())

    def accept_request(self, name):
        request = self._take_request(name)
        contact = Contact(name, request.card, ContactPresence.OFFLINE, None, 0, None)
        self._contacts[name] = contact
        self._contacts_changed()
        return contact

    def ignore_request(self, name):
        self._take_request(name)

    def block(self, name):
        if name in self._requests:
            self.blocked.append(self._take_request(name).card)
        elif name in self._contacts:
            self.blocked.append(self._contacts.pop(name).card)
            self._contacts_changed()
        else:
            raise UserError(f"No contact or request named {name}.")

    def rename_contact(self, name, new_name):
        new_name = new_name.strip()
        if name not in self._contacts:
            raise UserError(f"No contact named {name}.")
        if not new_name or new_name in self._contacts:
            raise UserError(f"You already have a contact named {new_name}." if new_name
                            else "Give the contact a name.")
        contact = replace(self._contacts.pop(name), name=new_name)
        self._contacts[new_name] = contact
        self._messages = [replace(m, contact=new_name) if m.contact == name else m
                          for m in self._messages]
        self._contacts_changed()
        return contact

    def remove_contact(self, name):
        if self._contacts.pop(name, None) is None:
            raise UserError(f"No contact named {name}.")
        self._contacts_changed()

    def mark_read(self, name):
        self.marked_read.append(name)
        self._contacts[name] = replace(self._contacts[name], unread=0)

    def refresh(self):
        d = Deferred()
        self.refreshes.append(d)
        return d

    def set_my_status(self, status):
        if status not in MY_STATUSES:
            raise UserError(f"Your status is online or away, not {status}.")
        self.my_statuses.append(status)
        self.set_status(replace(self._status, my_status=MyStatus(status)))

    def status(self):
        return self._status

    def subscribe(self, listener):
        self.listeners.append(listener)

    def groups(self):
        return sorted(self._groups.values(), key=lambda g: g.name.casefold())

    def create_group(self, name):
        if not name or " " in name or name in self._groups:
            raise UserError(f"bad or taken group name {name!r}")
        group = self._groups[name] = Group(name, (self.my_name,), (self.my_name,), True)
        return group

    def _group(self, name):
        if name not in self._groups:
            raise UserError(f"no group named {name!r}")
        return self._groups[name]

    def add_member(self, group, contact):
        g = self._group(group)
        if contact not in self._contacts or contact in g.members:
            raise UserError(f"cannot add {contact!r}")
        g = self._groups[group] = replace(g, members=g.members + (contact,))
        return g

    def remove_member(self, group, contact):
        g = self._group(group)
        if contact not in g.members:
            raise UserError(f"{contact!r} is not a member of {group}")
        g = self._groups[group] = replace(g, members=tuple(m for m in g.members if m != contact))
        return g

    def leave_group(self, group):
        g = self._group(group)
        self._groups[group] = replace(g, members=tuple(m for m in g.members if m != self.my_name), active=False)

    def send_group_message(self, group, text):
        if not self._group(group).active:
            raise UserError(f"you are not in {group} any more")
        return self._group_message(group, self.my_name, text)

    def group_history(self, group, limit=200, before=None):
        return [m for m in self._group_messages if m.group == self._group(group).name][-limit:]

    def receive_group_message(self, group, author, text):
        """The network's part: a member's message arrives."""
        message = self._group_message(group, author, text)
        for listener in self.listeners:
            getattr(listener, "group_message", lambda m: None)(message)
        return message

    def _group_message(self, group, author, text):
        message = GroupMessage(f"g{self._next_id}", group, author, author == self.my_name, text, self._now())
        self._next_id += 1
        self._group_messages.append(message)
        return message

    def send_file(self, name, path):
        if name not in self._contacts:
            raise UserError(f"No contact named {name}.")
        return self._new_transfer(name, True, path.rsplit("/", 1)[-1], 1000, path)

    def accept_file(self, transfer_id):
        t = self._transfers.get(transfer_id)
        if t is None or t.outgoing or t.state != "offered":
            raise UserError(f"#{transfer_id} is not a file offered to you")
        return self.set_transfer(transfer_id, state="active")

    def cancel_file(self, transfer_id):
        if transfer_id not in self._transfers:
            raise UserError(f"no file transfer #{transfer_id}")
        self.set_transfer(transfer_id, state="cancelled", reason="cancelled here")

    def transfers(self):
        return list(self._transfers.values())

    # The network's part, played by tests.

    def add(self, name, presence=ContactPresence.OFFLINE, last_seen=None, unread=0, route=None):
        assert presence in PRESENCES
        contact = Contact(name, f"card:{name}", presence, last_seen, unread, route)
        self._contacts[name] = contact
        return contact

    def past(self, name, outgoing, text, timestamp, state):
        """A message already in history before the UI started."""
        return self._store(name, outgoing, text, timestamp, state)

    def receive(self, name, text, timestamp=None):
        message = self._store(name, False, text, timestamp or self._now(), "received")
        contact = self._contacts[name]
        self._contacts[name] = replace(contact, unread=contact.unread + 1)
        for listener in self.listeners:
            listener.message(message)
        return message

    def set_presence(self, name, presence, route=None):
        assert presence in PRESENCES
        last_seen = self._now() if presence != "offline" else self._contacts[name].last_seen
        self._contacts[name] = replace(
            self._contacts[name], presence=presence, last_seen=last_seen, route=route
        )
        for listener in self.listeners:
            listener.presence(name, presence)

    def set_state(self, message_id, state):
        assert state in MESSAGE_STATES
        index = next(i for i, m in enumerate(self._messages) if m.id == message_id)
        self._messages[index] = replace(self._messages[index], state=state)
        for listener in self.listeners:
            listener.message_state(message_id, state)

    def set_status(self, status):
        self._status = status
        for listener in self.listeners:
            listener.status(status)

    def request(self, name, note="", card=None):
        """Somebody not in the contacts asks to become one."""
        request = ContactRequest(name, card or f"card:{name}", note, self._now())
        self._requests[name] = request
        for listener in self.listeners:
            listener.contact_request(request)
        return request

    def offer_file(self, name, file_name, size):
        """The contact offers us a file."""
        return self._new_transfer(name, False, file_name, size, None)

    def set_transfer(self, transfer_id, **changes):
        t = self._transfers[transfer_id] = replace(self._transfers[transfer_id], **changes)
        self._tell_transfer(t)
        return t

    def _new_transfer(self, name, outgoing, file_name, size, path):
        t = Transfer(len(self._transfers) + 1, name, outgoing, file_name, size, 0, "offered", path)
        self._transfers[t.id] = t
        self._tell_transfer(t)
        return t

    def _tell_transfer(self, t):
        for listener in self.listeners:
            if hasattr(listener, "transfer"):  # (a test's own listener may lack it)
                listener.transfer(t)

    def _take_request(self, name):
        if name not in self._requests:
            raise UserError(f"No contact request from {name}.")
        return self._requests.pop(name)

    def _contacts_changed(self):
        for listener in self.listeners:
            listener.contacts_changed()

    def _store(self, name, outgoing, text, timestamp, state):
        message = Message(f"m{self._next_id}", name, outgoing, text, timestamp, state)
        self._next_id += 1
        self._messages.append(message)
        return message
