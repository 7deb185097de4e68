"""Hand-over (Kademlia paper 2.5): a node we newly meet that is among the k
closest to an item we hold gets a copy, via a `get` for its token and current
seq, then a `put` with the remaining TTL.
"""

from twisted.internet import defer


class Handover:
    def __init__(self, node):
        self._node = node

    def offer(self, contact):
        """Hand `contact` every held item it is among the k closest to."""
        node = self._node
        for item, _ in node.store.items():
            if contact in node.routing_table.closest(item.target):
                self._hand_over(contact, item).addErrback(lambda _: None)

    @defer.inlineCallbacks
    def _hand_over(self, contact, item):
        node = self._node
        response = yield node.query_contact(
            contact.node_id, contact.address, b"get", {b"target": item.target}
        )
        seq, token = response.values.get(b"seq"), response.values.get(b"token")
        held = node.store.get(item.target)
        if held is None or not isinstance(token, bytes):
            return
        if isinstance(seq, int) and seq >= held[0].seq:
            return
        yield node.send_put(contact, token, *held)
