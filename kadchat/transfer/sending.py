"""One outgoing file: the pieces in flight, loss detection, the LEDBAT window, pacing.

The receiver's ANSWER says which chunks it holds; we send the pieces of the
others, in order, while the bytes in flight fit the window. Each piece
carries our clock; each ACK echoes it (round trip) and the one-way delay the
receiver saw (LEDBAT's input) and the bitmap of the chunk's pieces held. A
piece is lost once DUP_THRESHOLD pieces sent after it were acknowledged (as
TCP's fast retransmit), or a later one was and it is more than a round trip
old (RACK), or when nothing at all is acknowledged for the retransmission
timeout; lost pieces go out again before new ones. After
STALL_AFTER timeouts in a row we stop and wait: the receiver's next ANSWER
(it sends one when data stops, and when a session comes up) starts us again.

Pacing: at most BURST datagrams per reactor turn, so the reactor reads the
socket (acks, chat) between bursts; chat datagrams never queue behind ours.
"""

from collections import OrderedDict, deque

from kademlia.timers import cancel

from . import frames, merkle
from .bitmap import ChunkBitmap
from .ledbat import Ledbat

DUP_THRESHOLD = 3
BURST = 32
MIN_RTO, MAX_RTO = 0.2, 8.0
STALL_AFTER = 6
RESTART_AFTER = 0.5  # seconds without acks after which an ANSWER means the receiver starts over
MAX_WINDOW = 192 * 1024  # under the receiver's socket buffer (Linux: 208 KiB by default)
MSS = frames.PIECE_SIZE


def read_chunk(path, index, size):
    """The bytes of chunk `index` of the file at `path` (read again each time: files are big)."""
    with open(path, "rb") as f:
        f.seek(index * merkle.CHUNK_SIZE)
        return f.read(merkle.chunk_length(size, index))


class OutgoingTransfer:
    def __init__(self, clock, send, row, leaves, on_complete, on_changed):
        """`send(record) -> bool`: over the peer's session; `on_complete()` once the receiver
        holds every chunk; `on_changed()` when the file no longer matches what we offered."""
        self._clock = clock
        self._send = send
        self.row = row
        self.leaves = leaves
        self._on_complete = on_complete
        self._on_changed = on_changed
        self.count = merkle.chunk_count(row.size)
        self.held = ChunkBitmap(self.count)
        self.cc = Ledbat(clock, MSS, max_window=MAX_WINDOW)
        self.sent_bytes = row.sent
        self._acked = {}  # chunk -> bitmap of its pieces the receiver holds
        self._plan = deque()  # (chunk, piece) not sent yet, in order
        self._lost = deque()  # (chunk, piece) to send again, first
        self._flight = OrderedDict()  # (chunk, piece) -> (seq, sent at, size), in sending order
        self._in_flight = 0
        self._seq = 0
        self._timeouts = 0
        self._last_ack = None  # when the receiver last acknowledged anything
        self._timer = None
        self._pump_call = None
        self._cache = (None, b"")  # (chunk index, its bytes): pieces go out chunk by chunk
        self.finished = False

    # -- what the receiver tells us -------------------------------------------

    def answered(self, first_byte, page):
        """The receiver holds the chunks of `page`: (re)start from there. It may have
        restarted and lost chunks it had not verified yet: their pieces go again. But
        while its acks still flow this is a repeat (its idle kick crossing our data,
        several pages, a session coming up): planning again would resend the window."""
        self.held.merge_page(first_byte, page)
        now = self._clock.seconds()
        if self._last_ack is not None and now - self._last_ack < RESTART_AFTER:
            self._check_complete()
            return
        self._acked.clear()
        self._flight.clear()
        self._in_flight = 0
        self._lost.clear()
        self._plan = deque((c, p) for c in self.held.missing() for p in range(self._pieces(c)))
        self._timeouts = 0
        self._last_ack = None  # until the first ack, every answer (re)starts us
        self._check_complete()
        self._schedule_pump()

    def ack_received(self, ack):
        now = self._clock.seconds()
        if not 0 <= ack.chunk < self.count:
            return
        self._last_ack = now
        self._timeouts = 0
        rtt = now - ack.echo_us / 1e6 if 0 < ack.echo_us <= now * 1e6 else None
        acked_bytes, newest = 0, -1
        if ack.verdict == frames.BAD:
            self._chunk_failed(ack.chunk)
        elif ack.verdict == frames.KEPT:
            self.held.add(ack.chunk)
            self._acked.pop(ack.chunk, None)
            for piece in range(self._pieces(ack.chunk)):
                acked_bytes, newest = self._landed((ack.chunk, piece), acked_bytes, newest)
        else:
            known = self._acked.get(ack.chunk, 0)
            self._acked[ack.chunk] = known | ack.pieces
            news = ack.pieces & ~known
            while news:
                piece = (news & -news).bit_length() - 1
                news &= news - 1
                acked_bytes, newest = self._landed((ack.chunk, piece), acked_bytes, newest)
        if acked_bytes:
            self.cc.on_ack(acked_bytes, ack.delay_us / 1e6, rtt)
        self._detect_loss(newest)
        self._check_complete()
        self._schedule_pump()

    def _landed(self, key, acked_bytes, newest):
        sent = self._flight.pop(key, None)
        if sent is None:
            return acked_bytes, newest
        self._in_flight -= sent[2]
        return acked_bytes + sent[2], max(newest, sent[0])

    def _chunk_failed(self, chunk):
        """The receiver's hash check failed: is our file still the one we offered?"""
        data = read_chunk(self.row.path, chunk, self.row.size)
        if merkle.leaf_hash(data) != self.leaves[chunk]:
            self._on_changed()
            return
        self._acked.pop(chunk, None)
        for key in [k for k in self._flight if k[0] == chunk]:
            self._in_flight -= self._flight.pop(key)[2]
        self._lost.extendleft(reversed([(chunk, p) for p in range(self._pieces(chunk))]))

    def _detect_loss(self, newest):
        """Pieces sent before the newest one acknowledged are lost once DUP_THRESHOLD later
        ones came back, or (RFC 8985, RACK) once they are older than a round trip and a
        quarter: in a small window three later acks may never come, and waiting for the
        timeout each time is what made 20% loss crawl."""
        lost_any = False
        stale_before = self._clock.seconds() - 1.25 * (self.cc.srtt or MIN_RTO)
        while self._flight:
            key, (seq, sent_at, size) = next(iter(self._flight.items()))
            if seq >= newest or (seq > newest - DUP_THRESHOLD and sent_at > stale_before):
                break
            del self._flight[key]
            self._in_flight -= size
            self._lost.append(key)
            lost_any = True
        if lost_any:
            self.cc.on_loss()

    def _check_complete(self):
        if self.held.complete and not self.finished:
            self.finished = True
            self.stop()
            self._on_complete()

    # -- sending ---------------------------------------------------------------

    def _schedule_pump(self):
        if not self.finished and self._pump_call is None and (self._lost or self._plan):
            self._pump_call = self._clock.callLater(0, self._pump)

    def _pump(self):
        self._pump_call = None
        sent = 0
        while sent < BURST and self._in_flight + MSS <= self.cc.window:
            key = self._next()
            if key is None:
                break
            if not self._transmit(key):
                self._lost.appendleft(key)  # no session: the next ANSWER or timeout retries
                break
            sent += 1
        if sent == BURST:
            self._schedule_pump()
        self._arm_timer()

    def _next(self):
        for queue in (self._lost, self._plan):
            while queue:
                key = queue.popleft()
                if key[0] not in self.held and not self._acked.get(key[0], 0) >> key[1] & 1:
                    return key
        return None

    def _transmit(self, key):
        chunk, piece = key
        if self._cache[0] != chunk:
            self._cache = (chunk, read_chunk(self.row.path, chunk, self.row.size))
        data = self._cache[1][piece * MSS:(piece + 1) * MSS]
        now = self._clock.seconds()
        if not self._send(frames.Data(self.row.transfer, chunk, piece, int(now * 1e6), data)):
            return False
        self._seq += 1
        self._flight[key] = (self._seq, now, len(data))
        self._in_flight += len(data)
        self.sent_bytes += len(data)
        return True

    def _rto(self):
        srtt = self.cc.srtt or 0.5
        return min(MAX_RTO, max(MIN_RTO, 4 * srtt) * 2 ** self._timeouts)

    def _arm_timer(self):
        self._timer = cancel(self._timer)
        if self._flight and not self.finished:
            self._timer = self._clock.callLater(self._rto(), self._timed_out)

    def _timed_out(self):
        self._timer = None
        self._timeouts += 1
        self.cc.on_timeout()
        self._lost.extend(self._flight)  # in order
        self._flight.clear()
        self._in_flight = 0
        if self._timeouts >= STALL_AFTER:
            return  # the receiver is gone; its next ANSWER restarts us
        self._pump()

    def _pieces(self, chunk):
        return -(-merkle.chunk_length(self.row.size, chunk) // MSS)

    def stop(self):
        self._timer = cancel(self._timer)
        self._pump_call = cancel(self._pump_call)
