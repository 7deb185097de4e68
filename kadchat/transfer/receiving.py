"""One incoming file: leaf hashes checked against the root, each chunk checked on arrival.

Accepted, we first fetch the leaf hashes (GET/LEAVES, a page at a time) and
believe them only if they build the offer's root. Then we ANSWER with our
chunk bitmap and the sender streams pieces. A chunk's pieces gather in memory
(at most MAX_PARTIAL chunks at once); a complete chunk whose hash is not its
leaf is thrown away and the sender told (BAD) to send it again; a good one
is written in place in the partial file, flushed to disk, and only then
marked in the bitmap kept in transfers.db: after a crash the bitmap never
claims a chunk the file lacks. Every DATA is acknowledged with the chunk's
piece bitmap, our clock's view of its one-way delay and its timestamp echoed
(the sender's LEDBAT and round trip); the acks of one reactor turn (the
datagrams one socket read brought) go as one ACK per chunk, at the turn's
end: the bitmap says it all, and half the datagrams are acks otherwise.

When data stops for IDLE_KICK seconds (the sender restarted, or lost our
answer) we ANSWER again; the manager also does when a session comes up.
"""

import os

from twisted.logger import Logger

from . import frames, merkle
from .bitmap import ChunkBitmap

MAX_PARTIAL = 8  # chunks gathering at once (2 MiB, twice the sender's largest window)
IDLE_KICK = 1.0


class IncomingTransfer:
    log = Logger()

    def __init__(self, clock, send, row, save, on_complete, on_bad_leaves):
        """`send(record)`; `save(**fields)` updates the transfer's row;
        `on_complete()` once every chunk is verified and written."""
        self._clock = clock
        self._send = send
        self.row = row
        self._save = save
        self._on_complete = on_complete
        self._on_bad_leaves = on_bad_leaves
        self.count = merkle.chunk_count(row.size)
        self.held = ChunkBitmap(self.count, row.bitmap)
        self.leaves = _split_leaves(row.leaves) if row.leaves or not self.count else None
        self._fetched = {}  # leaf index -> hash, while fetching
        self._partial = {}  # chunk -> [bytearray, pieces bitmap]
        self._acks = {}  # chunk -> the ACK to send at the end of this reactor turn
        self._flush_call = None
        self.bad_chunks = 0
        self.last_heard = clock.seconds()
        self.finished = False

    def kick(self):
        """Ask for what we lack: the leaves, or the chunks (our bitmap)."""
        self.last_heard = self._clock.seconds()
        if self.leaves is None:
            for first in range(0, self.count, frames.LEAVES_PER_RECORD):
                if first not in self._fetched:
                    count = min(frames.LEAVES_PER_RECORD, self.count - first)
                    self._send(frames.Get(self.row.transfer, first, count))
            return
        self._answer()

    def _answer(self):
        size = len(self.held.to_bytes())
        for first in range(0, max(size, 1), frames.MAX_PAGE):
            self._send(frames.Answer(self.row.transfer, first, self.held.page(first, frames.MAX_PAGE)))

    def leaves_received(self, record):
        if self.leaves is not None or record.first % frames.LEAVES_PER_RECORD:
            return
        expected = min(frames.LEAVES_PER_RECORD, self.count - record.first)
        if expected <= 0 or len(record.hashes) != expected:
            return
        self.last_heard = self._clock.seconds()
        for i, h in enumerate(record.hashes):
            self._fetched[record.first + i] = h
        if len(self._fetched) < self.count:
            return
        leaves = [self._fetched[i] for i in range(self.count)]
        self._fetched = {}
        if merkle.root_of(leaves) != self.row.root:
            self._on_bad_leaves()
            return
        self.leaves = leaves
        self._save(leaves=b"".join(leaves))
        self._answer()

    def data_received(self, record):
        now = self._clock.seconds()
        self.last_heard = now
        chunk, piece = record.chunk, record.piece
        if self.leaves is None or not 0 <= chunk < self.count:
            return
        delay = int(now * 1e6) - record.sent_us
        if chunk in self.held:
            self._ack(record, frames.KEPT, delay)
            return
        length = merkle.chunk_length(self.row.size, chunk)
        pieces = -(-length // frames.PIECE_SIZE)
        if piece >= pieces or len(record.data) != min(frames.PIECE_SIZE, length - piece * frames.PIECE_SIZE):
            return  # not a piece of this file
        partial = self._partial.get(chunk)
        if partial is None:
            if len(self._partial) >= MAX_PARTIAL:
                return  # unacknowledged: the sender sends it again later
            partial = self._partial[chunk] = [bytearray(length), 0]
        partial[0][piece * frames.PIECE_SIZE:piece * frames.PIECE_SIZE + len(record.data)] = record.data
        partial[1] |= 1 << piece
        if partial[1] != (1 << pieces) - 1:
            self._ack(record, frames.PARTIAL, delay, partial[1])
            return
        del self._partial[chunk]
        if merkle.leaf_hash(partial[0]) != self.leaves[chunk]:
            self.bad_chunks += 1
            self.log.warn("bad chunk {chunk} of {name}: fetching it again", chunk=chunk, name=self.row.name)
            self._ack(record, frames.BAD, delay)
            return
        self._keep(chunk, bytes(partial[0]))
        self._ack(record, frames.KEPT, delay)
        if self.held.complete:
            self._finish()

    def _keep(self, chunk, data):
        fd = os.open(self.row.path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, chunk * merkle.CHUNK_SIZE)
            os.fdatasync(fd)  # on disk before the bitmap says so
        finally:
            os.close(fd)
        self.held.add(chunk)
        self._save(bitmap=self.held.to_bytes())

    def _ack(self, record, verdict, delay, pieces=0):
        self._acks[record.chunk] = frames.Ack(self.row.transfer, record.chunk, verdict, record.sent_us, delay, pieces)
        if self._flush_call is None:
            self._flush_call = self._clock.callLater(0, self._flush_acks)

    def _flush_acks(self):
        self._flush_call = None
        acks, self._acks = self._acks, {}
        for ack in acks.values():
            self._send(ack)

    def _finish(self):
        if not self.finished:
            self.finished = True
            self._partial.clear()
            self._on_complete()

    def start(self):
        """Called once leaves and file are in place; a file already complete (crash at the end) finishes."""
        if self.leaves is not None and self.held.complete:
            if merkle.root_of(self.leaves) != self.row.root:  # an empty file's root
                self._on_bad_leaves()
            else:
                self._finish()
        else:
            self.kick()


def _split_leaves(blob):
    return [blob[i:i + merkle.HASH_SIZE] for i in range(0, len(blob), merkle.HASH_SIZE)]
