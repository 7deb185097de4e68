"""ChatService as a composition root: built whole, nothing bound or scheduled before start()."""

from twisted.internet import task

from config import Config
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
