"""kadchat.dispatch: which part a non-KRPC datagram goes to."""

from kadchat import wire
from kadchat.dispatch import DatagramDispatch
from kadchat.nat import natwire

TAG = b"t" * natwire.TAG_SIZE
CALLER = ("198.51.100.7", 40001)


class Recorder:
    def __init__(self, carried=None):
        self.seen, self.carried = [], carried

    def handle(self, message, address):
        self.seen.append((type(message).__name__, address))

    def client(self, message, address):
        self.seen.append((type(message).__name__, address))
        return self.carried

    def chat(self, data, address):
        self.seen.append((data[:1], address))


def test_a_server_serves_nat_requests_and_drops_chat_and_junk():
    introducer = Recorder()
    dispatch = DatagramDispatch(introducer)
    dispatch(natwire.encode(natwire.Register(TAG, natwire.NO_COOKIE)), CALLER)
    dispatch(wire.encode_unknown_session(7, bytes(16)), CALLER)
    dispatch(bytes([natwire.NAT_TYPES[0]]) + b"short", CALLER)
    dispatch(b"", CALLER)
    assert introducer.seen == [("Register", CALLER)]


def test_a_client_also_takes_its_own_nat_answers_and_the_chat_datagrams_they_carry():
    introducer, client_side = Recorder(), Recorder()
    initiation = bytes([wire.INITIATION]) + bytes(100)
    client_side.carried = (initiation, CALLER)
    chat = Recorder()
    dispatch = DatagramDispatch(introducer, client_side.client, chat.chat)
    introduction = natwire.encode(natwire.Introduction(CALLER, initiation))
    dispatch(introduction, ("203.0.113.9", 6881))
    dispatch(wire.encode_unknown_session(7, bytes(16)), CALLER)
    assert introducer.seen == client_side.seen == [("Introduction", ("203.0.113.9", 6881))]
    assert chat.seen == [(bytes([wire.INITIATION]), CALLER), (wire.encode_unknown_session(7, bytes(16))[:1], CALLER)]
