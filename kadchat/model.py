"""What the user interfaces see of the chat: contacts, messages, status.

These are the values `kadchat.service.ChatService` hands to the GUI and the
console (docs/INTERFACES.md, "The backend the UIs talk to"). They are frozen:
a change arrives as a listener call, never as a mutation behind a UI's back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from twisted.internet.defer import Deferred

class ContactPresence(StrEnum):
    """How a contact can be reached now, as the UIs show it (most reachable first)."""

    CONNECTED = "connected"  # a live session: they hear us at once, and we would know if they left
    AWAY = "away"  # connected or seen, and they said they are away
    SEEN = "seen"  # seen in the network: a fresh presence record, no session (yet)
    OFFLINE = "offline"


class MyStatus(StrEnum):
    """What the user says of themselves (ChatBackend.set_my_status)."""

    ONLINE = "online"
    AWAY = "away"


PRESENCES = tuple(ContactPresence)
MY_STATUSES = tuple(MyStatus)
ROUTES = ("direct", "relayed", None)


class MessageState(StrEnum):
    """A message's state; the values are what the history file stores and the UIs compare with."""

    SENDING = "sending"  # stored, in the outbox, not every fragment sent yet
    QUEUED = "queued"  # on this computer only, waiting for a contact who is not connected
    STORED = "stored"  # in the network as dead drops (kadchat.mailbox): the sender may quit
    SENT = "sent"  # every fragment went out at least once
    DELIVERED = "delivered"  # stored by the peer (it acknowledged all fragments)
    FAILED = "failed"  # nothing acknowledged for a while; still in the outbox
    RECEIVED = "received"  # incoming, shown
    HELD = "held"  # incoming, stored behind a gap in the conversation, not shown yet


MESSAGE_STATES = tuple(s for s in MessageState if s is not MessageState.HELD)  # what the UIs see
REACHABILITIES = ("direct", "relayed", "unknown")


@dataclass(frozen=True)
class Contact:
    name: str  # the local name the user gave this contact; unique
    card: str  # the contact card text, as pasted
    presence: ContactPresence
    last_seen: float | None  # unix seconds of the last sign of life, None if never
    unread: int  # received messages not yet shown to the user
    route: str | None  # one of ROUTES: how a live session reaches them, None if none


@dataclass(frozen=True)
class Message:
    id: str  # opaque, unique across all conversations
    contact: str  # the contact's name
    outgoing: bool
    text: str
    timestamp: float  # unix seconds: when sent (outgoing) or written (incoming)
    state: MessageState  # one of MESSAGE_STATES; RECEIVED for incoming messages


@dataclass(frozen=True)
class ContactRequest:
    name: str  # the name the sender gave, made unique among contacts and requests
    card: str  # the sender's contact card
    note: str  # a short note from the sender, possibly empty
    received: float  # unix seconds


@dataclass(frozen=True)
class Status:
    dht_peers: int  # nodes in the routing table
    external_address: tuple[str, int] | None  # as voted by DHT peers, None if unknown
    reachability: str  # one of REACHABILITIES
    my_status: MyStatus = MyStatus.ONLINE  # as the user set it
    # "HOST:PORT" of every bootstrap node tried, while none of them answers (for a
    # "can't reach the network" banner); empty once joined or before the first try
    unreachable: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    name: str  # the local name of the group; unique among our groups
    members: tuple[str, ...]  # current members' names (contacts by our name for them), us included
    admins: tuple[str, ...]
    active: bool  # we are a member (not removed, not left)


@dataclass(frozen=True)
class GroupMessage:
    id: str  # opaque, unique
    group: str  # the group's name
    author: str  # the author's name (a contact's as we call them; ours is my_name)
    outgoing: bool
    text: str
    timestamp: float  # unix seconds, by the author's clock


TRANSFER_STATES = ("offered", "active", "done", "cancelled")


@dataclass(frozen=True)
class Transfer:
    """A file sent or received (kadchat.transfer)."""

    id: int  # what the user types: /accept 3, /cancel 3 (shown as #3)
    contact: str  # the contact's name
    outgoing: bool
    name: str  # the file's name, made safe (kadchat.transfer.names)
    size: int  # bytes
    done: int  # bytes the receiver holds, verified
    state: str  # one of TRANSFER_STATES: offered (waiting for an answer), active, done, cancelled
    path: str | None  # outgoing: the file sent; incoming: the partial file, then the received one
    reason: str | None = None  # why it was cancelled
    sent: int = 0  # outgoing: file bytes put on the wire, retransmissions included


class ChatListener(Protocol):
    """What `ChatBackend.subscribe` calls; every method returns quickly."""

    def message(self, message: Message) -> None:
        """A message was received, or sent from another UI of this process."""

    def message_state(self, message_id: str, state: str) -> None:
        """An outgoing message moved to `state`."""

    def presence(self, name: str, presence: str) -> None:
        """A contact's presence changed."""

    def status(self, status: Status) -> None:
        """The node's status changed."""

    def contact_request(self, request: ContactRequest) -> None:
        """Somebody who is not a contact asked to become one."""

    def contacts_changed(self) -> None:
        """A contact was added, renamed, removed or blocked, here or by another UI."""

    def group_message(self, message: GroupMessage) -> None:
        """A new message in one of our groups (ours from another UI too), once, after it is stored."""

    def transfer(self, transfer: Transfer) -> None:
        """A file transfer was offered, accepted, finished or cancelled (either side)."""


class ChatBackend(Protocol):
    """The calls the UIs make; implemented by `kadchat.service.ChatService`."""

    my_name: str
    my_card: str

    def contacts(self) -> list[Contact]: ...

    def add_contact(self, card_text: str, name: str, note: str = "") -> Contact:
        """`note` goes with our contact request, should they not have us yet; raises
        `kadchat.errors.UserError` on a bad card or name."""

    def send_message(self, name: str, text: str) -> Message:
        """Raises `kadchat.errors.UserError` on an unknown contact or bad text."""

    def retry(self, message_id: str) -> None: ...

    def history(self, name: str, limit: int = 200, before: str | None = None) -> list[Message]:
        """The latest `limit` messages with `name` (older than message id `before`), oldest first."""

    def search(self, text: str, limit: int = 50) -> list[Message]:
        """Messages of any conversation matching `text`, newest first."""

    def undelivered(self) -> list[Message]:
        """Outgoing messages not delivered yet (they stay queued across a quit), oldest first."""

    def requests(self) -> list[ContactRequest]:
        """Contact requests waiting for an answer, oldest first."""

    def accept_request(self, name: str) -> Contact:
        """Adds the requester as a contact; raises `kadchat.errors.UserError` if no such request."""

    def ignore_request(self, name: str) -> None:
        """Drops the request; the sender may ask again later."""

    def block(self, name: str) -> None:
        """A contact or a requester: removed, and nothing from their card reaches us again."""

    def rename_contact(self, name: str, new_name: str) -> Contact:
        """Raises `kadchat.errors.UserError` on an unknown contact or a taken or bad name."""

    def remove_contact(self, name: str) -> None:
        """Removed and cut off from our presence; history kept; they may send a request again."""

    def mark_read(self, name: str) -> None: ...

    def refresh(self) -> Deferred: ...

    def set_my_status(self, status: str) -> None:
        """Online or away, told to contacts at once; raises `kadchat.errors.UserError` on another value."""

    def status(self) -> Status: ...

    def groups(self) -> list[Group]: ...

    def create_group(self, name: str) -> Group:
        """We are its admin; raises `kadchat.errors.UserError` on a bad or taken name."""

    def add_member(self, group: str, contact: str) -> Group:
        """Admins only; raises `kadchat.errors.UserError` on an unknown group or contact."""

    def remove_member(self, group: str, contact: str) -> Group:
        """Admins only: the member is sent nothing of the group from now on."""

    def leave_group(self, group: str) -> None:
        """We are out; the history stays."""

    def send_group_message(self, group: str, text: str) -> GroupMessage:
        """Raises `kadchat.errors.UserError` on an unknown group, bad text or too many messages a minute."""

    def group_history(self, group: str, limit: int = 200, before: str | None = None) -> list[GroupMessage]:
        """The latest `limit` messages in the order every member shows, oldest first."""

    def send_file(self, name: str, path: str) -> Transfer:
        """Offers the file to the contact; raises `kadchat.errors.UserError` on an unknown
        contact, an unreadable file, or a relayed route and a file over the relay cap."""

    def accept_file(self, transfer_id: int) -> Transfer:
        """Starts receiving an offered file into the downloads folder; UserError if no such offer."""

    def cancel_file(self, transfer_id: int) -> None:
        """Ends a transfer either way, at both ends; UserError if it is not running."""

    def transfers(self) -> list[Transfer]:
        """Every file transfer, oldest first."""

    def subscribe(self, listener: ChatListener) -> None: ...
