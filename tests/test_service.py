"""ChatService as a composition root: built whole, nothing bound or scheduled before start()."""

import pytest
from twisted.internet import task

from config import Config
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
