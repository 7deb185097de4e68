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
