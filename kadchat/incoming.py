"""What the receiving side of kadchat.messaging keeps per peer: partial messages, and order.

A message is shown in `seq` order; one that arrives ahead of a gap is held
(stored, unshown) until the gap is filled or the sender's `base` says that
everything below it was stored already.
"""


class Partial:
    """Fragments of one incoming message received so far."""

    def __init__(self, first):
        self.first = first
        self.chunks = {}
        self.received = 0  # bitmap

    def add(self, fragment):
        f = self.first
        # (base may differ: it grows while the message waits for retransmission)
        if (fragment.count, fragment.seq, fragment.timestamp_us) != (f.count, f.seq, f.timestamp_us):
            return False
        self.chunks[fragment.index] = fragment.chunk
        self.received |= 1 << fragment.index
        return True

    @property
    def complete(self):
        return len(self.chunks) == self.first.count

    def text(self):
        data = b"".join(self.chunks[i] for i in range(self.first.count))
        return data.decode("utf-8", errors="replace")  # a contact's bug must not block the chat


class Incoming:
    """One peer's incoming order state: next seq to show, stored-but-held, partial."""

    def __init__(self, next_seq, held):
        self.next_seq = next_seq
        self.held = {m.seq: m for m in held}
        self.partial = {}  # id -> _Partial, oldest first

    def accept(self, message, base):
        """Take a complete new message; returns the messages now showable, in order."""
        if message.seq < self.next_seq:
            return [message]  # below what we showed already: a sender that lost its history
        self.held[message.seq] = message
        ready = []
        if base > self.next_seq:  # all below base was acknowledged, so stored: stop waiting
            ready = [self.held.pop(seq) for seq in sorted(s for s in self.held if s < base)]
            self.next_seq = base
        while self.next_seq in self.held:
            ready.append(self.held.pop(self.next_seq))
            self.next_seq += 1
        return ready
