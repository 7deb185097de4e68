"""The UI-facing types, and backends that must match the ChatBackend contract."""

import dataclasses
import importlib
import inspect

import pytest

from kadchat.errors import UserError
from kadchat.model import ChatBackend, ChatListener, Contact, Message, MyStatus, Status
from tests.backend_double import BackendDouble

BACKEND_METHODS = [name for name, value in vars(ChatBackend).items()
                   if inspect.isfunction(value) and not name.startswith("_")]


def test_values_are_frozen_with_the_documented_fields():
    assert [f.name for f in dataclasses.fields(Contact)] == [
        "name", "card", "presence", "last_seen", "unread", "route"]
    assert [f.name for f in dataclasses.fields(Message)] == [
        "id", "contact", "outgoing", "text", "timestamp", "state"]
    assert [f.name for f in dataclasses.fields(Status)] == [
        "dht_peers", "external_address", "reachability", "my_status", "unreachable"]
    status = Status(1, None, "unknown")
    assert status.my_status == MyStatus.ONLINE
    with pytest.raises(dataclasses.FrozenInstanceError):
        status.dht_peers = 2


def test_listener_protocol_has_the_seven_events():
    assert sorted(n for n, v in vars(ChatListener).items()
                  if inspect.isfunction(v) and not n.startswith("_")) == [
        "contact_request", "contacts_changed", "group_message", "message", "message_state", "presence", "status", "transfer"]


def real_service():
    """kadchat.service.ChatService once it exists (it is written separately)."""
    try:
        return importlib.import_module("kadchat.service").ChatService
    except ModuleNotFoundError:
        return None


@pytest.mark.parametrize("backend", [BackendDouble, real_service()],
                         ids=["BackendDouble", "ChatService"])
def test_backend_offers_every_call_with_the_documented_parameters(backend):
    if backend is None:
        pytest.skip("kadchat.service.ChatService is not written yet")
    for name in BACKEND_METHODS:
        expected = list(inspect.signature(getattr(ChatBackend, name)).parameters)
        actual = list(inspect.signature(getattr(backend, name)).parameters)
        assert actual[:len(expected)] == expected, name


class StatusEvents(list):
    def status(self, status):
        self.append(status)


def test_the_double_sets_my_status_like_the_service_promises():
    backend, events = BackendDouble(), StatusEvents()
    backend.subscribe(events)
    backend.set_my_status("away")
    assert backend.status().my_status == MyStatus.AWAY
    assert [s.my_status for s in events] == [MyStatus.AWAY]
    with pytest.raises(UserError):
        backend.set_my_status("busy")
    assert backend.my_statuses == ["away"]
