"""The node's non-KRPC datagrams, told apart by their first byte (docs/INTERFACES.md).

0x10..0x1f are NAT traversal: every node serves them as an introducer, and a
client also takes those meant for it, which may carry a chat datagram (an
introduced handshake, a relayed one). 0x01..0x0f are chat sessions, for
clients only. Anything else, or anything malformed, is dropped: a stranger's
junk costs one decode attempt.
"""

from kadchat import wire
from kadchat.nat import natwire


class DatagramDispatch:
    def __init__(self, introducer, nat_client=None, chat=None):
        """`nat_client(message, address)` returns a carried chat datagram with its address,
        or None; `chat(data, address)` takes session datagrams. A server has neither."""
        self._introducer = introducer
        self._nat_client = nat_client
        self._chat = chat

    def __call__(self, data, address):
        if data[:1] and data[0] in natwire.NAT_TYPES:
            carried = self._nat_received(data, address)
            if carried is None:
                return
            data, address = carried
        if self._chat is not None and wire.is_session_datagram(data):
            self._chat(data, address)

    def _nat_received(self, data, address):
        try:
            message = natwire.decode(data)
        except natwire.NatWireError:
            return None
        self._introducer.handle(message, address)
        return self._nat_client(message, address) if self._nat_client is not None else None
