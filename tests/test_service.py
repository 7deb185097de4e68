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
