"""ChatService as a composition root: built whole, nothing bound or scheduled before start()."""

import pytest
from nacl.signing import SigningKey
from twisted.internet import task

from config import Config
from kadchat.cards import encode_card
from kadchat.errors import UserError
from kadchat.identity import load_or_create
from kadchat.model import MyStatus, Status
from kadchat.service import ChatService


def test_status_and_contacts_work_before_start_and_nothing_is_scheduled(tmp_path):
    clock = task.Clock()
    identity = load_or_create(str(tmp_path), "alice")
    service = ChatService(clock, Config(data_dir=str(tmp_path)), identity)
    assert service.status() == Status(dht_peers=0, external_address=None, reachability="unknown",
                                      my_status=MyStatus.ONLINE)
    assert service.contacts() == []
    assert service.address is None
    assert clock.getDelayedCalls() == []


class Events(list):
    def contact_request(self, request):
        self.append(("request", request.name, request.note))

    def contacts_changed(self):
        self.append(("contacts",))


def test_contact_requests_rename_remove_and_block_tell_the_uis_and_change_the_files(tmp_path):
    bob, carol, mallory, dave = (bytes(SigningKey(bytes([n]) * 32).verify_key) for n in (2, 3, 4, 5))
    service = ChatService(task.Clock(), Config(data_dir=str(tmp_path)), load_or_create(str(tmp_path), "alice"))
    service.book.load()  # not started: no socket, the contact calls need none
    events = Events()
    service.subscribe(events)
    service.add_contact(encode_card(bob), "Bob")
    service.request_received(carol, "Carol", "we met at the conference", ("10.0.0.3", 1))
    service.request_received(mallory, "Bob", "", ("10.0.0.4", 1))  # a name like a contact's is made unique
    service.request_received(bob, "Bob", "", ("10.0.0.2", 1))  # a contact's ask is no request
    assert [r.name for r in service.requests()] == ["Carol", "Bob (2)"]
    service.add_contact(encode_card(dave), "Carol")  # the request's name is taken meanwhile...
    with pytest.raises(UserError, match="already have a contact named 'Carol'"):
        service.accept_request("Carol")
    assert [r.name for r in service.requests()] == ["Carol", "Bob (2)"]  # ... and the request is kept
    service.remove_contact("Carol")
    assert service.accept_request("Carol").name == "Carol"
    service.block("Bob (2)")
    with pytest.raises(UserError):
        service.ignore_request("Bob (2)")
    service.request_received(mallory, "M", "let me in", ("10.0.0.5", 1))  # blocked: nothing shows
    assert service.rename_contact("Bob", "Robert").name == "Robert"
    service.remove_contact("Carol")
    service.block("Robert")
    assert events == [("contacts",), ("request", "Carol", "we met at the conference"), ("request", "Bob (2)", ""),
                      ("contacts",), ("contacts",), ("contacts",), ("contacts",), ("contacts",), ("contacts",),
                      ("contacts",)]
    assert service.contacts() == [] and service.requests() == []
    assert (tmp_path / "contacts.txt").read_text() == ""
    assert encode_card(mallory) in (tmp_path / "blocked.txt").read_text()
    assert f"{encode_card(bob)} Robert" in (tmp_path / "blocked.txt").read_text()
    assert not service.book.is_contact(bob) and service.blocked.is_blocked(bob)
    service.add_contact(encode_card(bob), "Bob")  # adding a blocked card again unblocks it
    assert not service.blocked.is_blocked(bob) and encode_card(bob) not in (tmp_path / "blocked.txt").read_text()


def test_undelivered_lists_the_outbox_oldest_first_until_delivered(tmp_path):
    clock = task.Clock()
    clock.advance(1_700_000_000)
    identity = load_or_create(str(tmp_path / "alice"), "alice")
    service = ChatService(clock, Config(data_dir=str(tmp_path / "alice")), identity)
    for name in ("bob", "carol"):
        service.add_contact(load_or_create(str(tmp_path / name), name).card, name)
    first = service.send_message("carol", "first")
    clock.advance(1)
    second = service.send_message("bob", "second")
    assert [(m.id, m.contact, m.text) for m in service.undelivered()] == [
        (first.id, "carol", "first"), (second.id, "bob", "second")]
    service._db.set_state(service.book.key_of("carol"), bytes.fromhex(first.id), "delivered")
    assert [m.id for m in service.undelivered()] == [second.id]


def test_history_pages_and_search_go_through_the_contact_names(tmp_path):
    bob = load_or_create(str(tmp_path / "bob"), "bob")
    service = ChatService(task.Clock(), Config(data_dir=str(tmp_path)), load_or_create(str(tmp_path), "alice"))
    service.book.add(bob.card, "Bob Big")
    for i in range(5):
        service._db.add_outgoing(bob.public_key, bytes([i]) * 16, f"note {i}", float(i))
    latest = service.history("Bob Big", limit=2)
    assert [m.text for m in latest] == ["note 3", "note 4"]
    assert [m.text for m in service.history("Bob Big", 2, before=latest[0].id)] == ["note 1", "note 2"]
    found = service.search("NOTE", limit=2)
    assert [(m.contact, m.text) for m in found] == [("Bob Big", "note 4"), ("Bob Big", "note 3")]
    with pytest.raises(UserError, match="not a message id"):
        service.history("Bob Big", before="zz")
    service._db.close()


def test_last_seen_is_never_older_than_the_last_message_received(tmp_path):
    import os

    from kadchat.cards import decode_card
    from kadchat.history import StoredMessage
    from kadchat.model import MessageState
    from tests.client_helpers import make_identity, write_contacts

    clock = task.Clock()
    clock.advance(1_800_000_000)
    bob_card = make_identity(tmp_path / "bob", "bob")
    write_contacts(tmp_path, {"bob": bob_card})
    identity = load_or_create(str(tmp_path), "alice")
    service = ChatService(clock, Config(data_dir=str(tmp_path)), identity)
    assert service.book.load() == []
    bob = decode_card(bob_card)
    service.book.seen("bob", clock.seconds() - 600)  # a presence record from ten minutes ago
    message = StoredMessage(os.urandom(16), bob, False, 1, "still here", clock.seconds() - 5, MessageState.RECEIVED)
    service.message_received(bob, message)
    assert service.contacts()[0].last_seen == clock.seconds() - 5
    service.book.seen("bob", clock.seconds() - 300)  # an older record found later changes nothing
    assert service.contacts()[0].last_seen == clock.seconds() - 5
    future = StoredMessage(os.urandom(16), bob, False, 2, "from a fast clock", clock.seconds() + 3600,
                           MessageState.RECEIVED)
    service.message_received(bob, future)
    assert service.contacts()[0].last_seen == clock.seconds()  # never later than now
