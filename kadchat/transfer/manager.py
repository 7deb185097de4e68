"""All file transfers of one client, over its endpoint's sessions with contacts.

`Transfers` keeps the store and the live transfers in step: offers go out
(and again every OFFER_EVERY until answered), answers and records are routed
to the transfer they name, finished and cancelled ones say so to whoever
still sends for them. Through a relay a file above `relay_cap` bytes is
refused unless both ends set `relay_ok`: introducers must not become file
servers. Its listener gets a `model.Transfer` on every change of state.
"""

import os

from twisted.logger import Logger

from kadchat.errors import UserError
from kadchat.model import Transfer
from kadchat.wire import WireError
from kademlia.timers import Loop

from . import frames, merkle
from .names import claim_path, safe_name
from .sizes import human_size
from .receiving import IDLE_KICK, IncomingTransfer
from .sending import OutgoingTransfer
from .store import TransferStore

RELAY_CAP = 10 * 1000 * 1000
OFFER_EVERY = 1.0
SWEEP_EVERY = 0.5
MAX_OFFERS_PER_PEER = 32  # unanswered incoming offers a contact may have with us
FROM_SENDER = {frames.OFFER, frames.LEAVES, frames.DATA}
_GOODBYE_REPLIES = {frames.DATA, frames.ACK, frames.GET, frames.ANSWER, frames.LEAVES}


class Transfers:
    log = Logger()

    def __init__(self, clock, send, store: TransferStore, downloads, name_of, route_kind, on_change,
                 relay_ok=False, relay_cap=RELAY_CAP):
        """`send(peer, payload, expects_answer) -> bool` over the session; `downloads()` is the
        folder; `name_of(peer)` a contact's name (None: not a contact); `route_kind(peer)`
        "direct", "relayed" or None; `on_change(Transfer)`."""
        self._clock = clock
        self._send = send
        self._store = store
        self._downloads = downloads
        self._name_of = name_of
        self._route_kind = route_kind
        self._on_change = on_change
        self.relay_ok = relay_ok
        self.relay_cap = relay_cap
        self._out = {}  # (peer, transfer) -> OutgoingTransfer, active or offered
        self._in = {}  # (peer, transfer) -> IncomingTransfer, accepted
        self._offer_sent = {}  # row id -> when we last sent the offer
        self._sweeper = Loop(clock, SWEEP_EVERY, self._sweep)

    def start(self):
        for row in self._store.unfinished():
            try:
                self._revive(row)
            except OSError as e:
                self._finish(row, "cancelled", f"cannot resume: {e.strerror}")
        self._sweeper.start()

    def stop(self):
        for transfer in self._out.values():
            transfer.stop()
            self._store.update(transfer.row.id, sent=transfer.sent_bytes)
        return self._sweeper.stop()

    def _revive(self, row):
        if row.outgoing:
            size, leaves, root = merkle.hash_file(row.path)
            if (size, root) != (row.size, row.root):
                self._finish(row, "cancelled", "file changed")
                self._send_record(row.peer, frames.Cancel(row.transfer, frames.CHANGED))
                return
            self._out[row.peer, row.transfer] = self._outgoing(row, leaves)
        elif row.state == "active":
            self._in[row.peer, row.transfer] = self._incoming(row)
            self._in[row.peer, row.transfer].start()

    # -- what the UIs ask -------------------------------------------------------

    def offer(self, peer, path):
        try:
            size, leaves, root = merkle.hash_file(path)
        except OSError as e:
            raise UserError(f"cannot read {path}: {e.strerror}") from None
        if self._route_kind(peer) == "relayed" and size > self.relay_cap and not self.relay_ok:
            raise UserError(f"{human_size(size)} is over the {human_size(self.relay_cap)} cap for relayed transfers")
        name = safe_name(os.path.basename(path))
        row = self._store.add(os.urandom(8), peer, True, name, size, root,
                              frames.FLAG_RELAY_OK if self.relay_ok else 0, "offered",
                              os.path.abspath(path), self._clock.seconds())
        self._out[peer, row.transfer] = self._outgoing(row, leaves)
        self._send_offer(row)
        self._changed(row)
        return self.view(row)

    def accept(self, row_id):
        row = self._row(row_id)
        if row.outgoing or row.state != "offered":
            raise UserError(f"#{row_id} is not a file offered to you")
        folder = self._downloads()
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            part = claim_path(folder, row.name + ".kadchat-part")
            os.truncate(part, row.size)
        except OSError as e:
            raise UserError(f"cannot write in {folder}: {e.strerror}") from None
        self._store.update(row.id, state="active", path=part)
        row = self._store.get(row.id)
        transfer = self._in[row.peer, row.transfer] = self._incoming(row)
        transfer.start()
        self._changed(row)
        return self.view(row)

    def cancel(self, row_id):
        row = self._row(row_id)
        if row.state in ("done", "cancelled"):
            raise UserError(f"#{row_id} is already {row.state}")
        self._send_record(row.peer, frames.Cancel(row.transfer, frames.CANCELLED))
        self._finish(row, "cancelled", "cancelled here")

    def views(self):
        return [self.view(row) for row in self._store.all()]

    def view(self, row):
        live = (self._out if row.outgoing else self._in).get((row.peer, row.transfer))
        if live is None:
            done = row.size if row.state == "done" else 0
        else:
            done = live.held.held * merkle.CHUNK_SIZE
        sent = live.sent_bytes if row.outgoing and live is not None else row.sent
        return Transfer(id=row.id, contact=self._name_of(row.peer) or "?", outgoing=row.outgoing,
                        name=row.name, size=row.size, done=min(done, row.size), state=row.state,
                        path=row.path, reason=row.reason, sent=sent)

    def _row(self, row_id):
        row = self._store.get(row_id)
        if row is None or self._name_of(row.peer) is None:
            raise UserError(f"no file transfer #{row_id}")
        return row

    # -- records from the session -----------------------------------------------

    def record_received(self, peer, payload):
        if self._name_of(peer) is None:
            return
        try:
            record = frames.decode(payload)
        except WireError:
            self.log.debug("malformed file record from {peer}", peer=peer[:4].hex())
            return
        kind = payload[0]
        if kind == frames.OFFER:
            self._offered(peer, record)
            return
        if kind == frames.CANCEL:
            for outgoing in (False, True):
                row = self._store.find(record.transfer, peer, outgoing)
                if row is not None and row.state in ("offered", "active"):
                    self._finish(row, "cancelled", f"{frames.REASONS.get(record.reason, 'cancelled')} (by them)")
            return
        outgoing = kind not in FROM_SENDER
        live = (self._out if outgoing else self._in).get((peer, record.transfer))
        if live is None:
            self._stale(peer, record, kind, outgoing)
            return
        if kind == frames.DATA:
            live.data_received(record)
        elif kind == frames.LEAVES:
            live.leaves_received(record)
        elif kind == frames.ACK:
            live.ack_received(record)
        elif kind == frames.GET:
            self._leaves_asked(peer, live, record)
        elif kind == frames.ANSWER:
            self._answered(live, record)
        elif kind == frames.DONE:
            self._sent(live)

    def _stale(self, peer, record, kind, outgoing):
        """A record for a transfer that is not running here: tell the other end how it ended."""
        row = self._store.find(record.transfer, peer, outgoing)
        if row is not None and row.state == "done" and not outgoing:
            self._send_record(peer, frames.Done(record.transfer))
        elif (row is None or row.state == "cancelled") and kind in _GOODBYE_REPLIES:
            self._send_record(peer, frames.Cancel(record.transfer, frames.UNKNOWN if row is None else frames.CANCELLED))

    def _offered(self, peer, offer):
        row = self._store.find(offer.transfer, peer, False)
        if row is not None:  # the sender did not hear our answer yet
            live = self._in.get((peer, offer.transfer))
            if live is not None:
                live.kick()
            elif row.state in ("done", "cancelled"):
                self._stale(peer, offer, frames.DATA, False)
            return
        waiting = [r for r in self._store.unfinished() if r.peer == peer and not r.outgoing and r.state == "offered"]
        if len(waiting) >= MAX_OFFERS_PER_PEER:
            self._send_record(peer, frames.Cancel(offer.transfer, frames.CANCELLED))
            return
        row = self._store.add(offer.transfer, peer, False, safe_name(offer.name), offer.size, offer.root,
                              offer.flags, "offered", None, self._clock.seconds())
        if self._over_relay_cap(peer, row):
            self._send_record(peer, frames.Cancel(offer.transfer, frames.RELAY_CAP))
            self._finish(row, "cancelled", frames.REASONS[frames.RELAY_CAP])
            return
        self._changed(row)

    def _over_relay_cap(self, peer, row):
        both_ok = self.relay_ok and row.flags & frames.FLAG_RELAY_OK
        return self._route_kind(peer) == "relayed" and row.size > self.relay_cap and not both_ok

    def _leaves_asked(self, peer, live, get):
        hashes = tuple(live.leaves[get.first:get.first + get.count])
        if hashes:
            self._send_record(peer, frames.Leaves(get.transfer, get.first, hashes))

    def _answered(self, live, answer):
        row = live.row
        if row.state == "offered":
            self._store.update(row.id, state="active")
            row.state = "active"
            self._offer_sent.pop(row.id, None)
            self._changed(row)
        live.answered(answer.first_byte, answer.page)

    # -- ends ----------------------------------------------------------------------

    def _outgoing(self, row, leaves):
        peer = row.peer
        return OutgoingTransfer(self._clock, lambda record: self._send_record(peer, record), row, leaves,
                                on_complete=lambda: self._sent(self._out.get((peer, row.transfer))),
                                on_changed=lambda: self._changed_under_us(row))

    def _incoming(self, row):
        peer = row.peer
        return IncomingTransfer(self._clock, lambda record: self._send_record(peer, record, False), row,
                                save=lambda **fields: self._store.update(row.id, **fields),
                                on_complete=lambda: self._received(row),
                                on_bad_leaves=lambda: self._bad_leaves(row))

    def _sent(self, live):
        if live is not None:
            self._finish(live.row, "done", None)

    def _received(self, row):
        try:
            final = claim_path(os.path.dirname(row.path), row.name)
            os.replace(row.path, final)
        except OSError as e:
            self._send_record(row.peer, frames.Cancel(row.transfer, frames.NO_SPACE))
            self._finish(row, "cancelled", f"cannot keep the file: {e.strerror}")
            return
        self._store.update(row.id, path=final)
        row.path = final
        self._send_record(row.peer, frames.Done(row.transfer), False)
        self._finish(row, "done", None)

    def _bad_leaves(self, row):
        self._send_record(row.peer, frames.Cancel(row.transfer, frames.BAD_LEAVES))
        self._finish(row, "cancelled", "the sender's chunk hashes do not match its offer")

    def _changed_under_us(self, row):
        self._send_record(row.peer, frames.Cancel(row.transfer, frames.CHANGED))
        self._finish(row, "cancelled", "the file changed since it was offered")

    def _finish(self, row, state, reason):
        live = (self._out if row.outgoing else self._in).pop((row.peer, row.transfer), None)
        fields = dict(state=state, reason=reason)
        if row.outgoing and live is not None:
            live.stop()
            fields["sent"] = row.sent = live.sent_bytes
        if not row.outgoing and state == "cancelled" and row.path is not None:
            try:
                os.unlink(row.path)  # the partial file: what arrived was not kept
            except OSError:
                pass
            fields["path"] = row.path = None
        self._store.update(row.id, **fields)
        row.state, row.reason = state, reason
        self._offer_sent.pop(row.id, None)
        self._changed(row)

    # -- timers ----------------------------------------------------------------------

    def session_ready(self, peer):
        for (key, _), live in list(self._in.items()):
            if key == peer:
                live.kick()
        for (key, _), live in list(self._out.items()):
            if key == peer and live.row.state == "offered":
                self._send_offer(live.row)

    def _sweep(self):
        now = self._clock.seconds()
        for live in list(self._in.values()):
            if now - live.last_heard >= IDLE_KICK:
                live.kick()
        for live in list(self._out.values()):
            if live.row.state == "offered" and now - self._offer_sent.get(live.row.id, 0) >= OFFER_EVERY:
                self._send_offer(live.row)
            elif live.row.state == "active":
                self._store.update(live.row.id, sent=live.sent_bytes)

    def _send_offer(self, row):
        self._offer_sent[row.id] = self._clock.seconds()
        self._send_record(row.peer, frames.Offer(row.transfer, row.size, merkle.CHUNK_SIZE, row.root,
                                                 row.flags, row.name))

    def _send_record(self, peer, record, expects_answer=True):
        return self._send(peer, frames.encode(record), expects_answer)

    def _changed(self, row):
        self._on_change(self.view(row))

