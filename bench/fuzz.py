"""Fuzz every decoder that reads bytes from strangers; print crashes as JSON.

    python3 bench/fuzz.py --inputs 100000 [--seed 1] [--only bencode,krpc] [--max-seconds 600]

Each decoder gets `--inputs` inputs: a third fully random, the rest mutations
of valid samples (bit flips, byte replacements with bencode-significant bytes,
insertions, deletions, truncations, duplicated runs, splices of two samples).
A crash is any exception other than the decoder's documented error type; the
report keeps the first few distinct crashes (by exception type and line) of
each decoder with the input that caused it, in hex. Deterministic by seed.

Decoders: kademlia.bencode.decode (DecodeError), kademlia.krpc.decode_message
(MalformedMessage), kadchat.wire.decode and decode_record (WireError),
kadchat.nat.natwire.decode (NatWireError), and presence records:
kadchat.presence.open_record (PresenceError) on items with mutated fields, and
on genuinely signed, sealed records whose plaintext payload is mutated (what a
contact's own client could send), which reaches the payload decoder; contact
requests, kadchat.requestwire.open_request (RequestError), as sent and as
well-sealed bodies with mutated contents.
"""

import argparse
import hashlib
import json
import os
import random
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kademlia import bencode, krpc  # noqa: E402
from kademlia.items import MutableItem  # noqa: E402

INTERESTING = b"ide:0123456789l-\x00\xff\x7f\x80"
KEEP_CRASHES = 5


# -- valid samples -----------------------------------------------------------------


def bencode_samples():
    values = [0, -1, 2**63, b"", b"spam", [], {}, [1, [2, [3]]], {b"a": 1, b"b": [b"x", {b"c": b""}]},
              {b"t": b"aa", b"y": b"q", b"q": b"ping", b"a": {b"id": b"x" * 20}}]
    return [bencode.encode(v) for v in values] + krpc_samples()


def krpc_samples():
    node_id, target = b"\x11" * 20, b"\x22" * 20
    nodes = b"".join(bytes([i]) * 20 + bytes([10, 0, 0, i, 0x1a, 0xe1]) for i in range(1, 9))
    return [
        krpc.encode_query(b"aa", b"ping", {b"id": node_id}),
        krpc.encode_query(b"ab", b"find_node", {b"id": node_id, b"target": target}),
        krpc.encode_query(b"ac", b"get", {b"id": node_id, b"target": target}),
        krpc.encode_query(b"ad", b"put", {b"id": node_id, b"token": b"t" * 8, b"k": b"k" * 32,
                                          b"seq": 7, b"v": b"value", b"sig": b"s" * 64, b"ttl": 600}),
        krpc.encode_response(b"aa", {b"id": node_id}, ("10.0.0.1", 6881)),
        krpc.encode_response(b"ab", {b"id": node_id, b"nodes": nodes}, ("10.0.0.1", 6881)),
        krpc.encode_response(b"ac", {b"id": node_id, b"nodes": nodes, b"token": b"t" * 8,
                                     b"k": b"k" * 32, b"seq": 3, b"v": {b"x": 1},
                                     b"sig": b"s" * 64}, ("10.0.0.1", 6881)),
        krpc.encode_error(b"ad", 302, "sequence number less than current"),
    ]


def wire_samples():
    from kadchat import wire
    rng = random.Random(7)
    key, tag = rng.randbytes(32), rng.randbytes(16)
    return [
        wire.encode_initiation(5, key, rng.randbytes(48), rng.randbytes(24)),
        wire.encode_response(5, 6, key, tag),
        wire.transport_header(6, 1) + rng.randbytes(40),
        wire.encode_unknown_session(9, tag),
    ]


def record_samples():
    from kadchat import wire
    fragment = wire.MessageFragment(b"m" * 16, 3, 1, 1_700_000_000_000_000, 0, 2, b"x" * 1024)
    last = fragment._replace(index=1, chunk=b"tail")
    return [wire.encode_fragment(fragment), wire.encode_fragment(last),
            wire.encode_ack(wire.Ack(b"m" * 16, 2, 0b11)), wire.encode_ack(wire.Ack(b"m" * 16, 9, 5)), b""]


def natwire_samples():
    from kadchat.nat import natwire
    tag, other = b"t" * 16, b"u" * 16
    return [natwire.encode(m) for m in (
        natwire.Register(tag), natwire.Registered(tag, ("192.0.2.1", 4000), b"c" * natwire.COOKIE_SIZE),
        natwire.Introduce(tag, b"\x01" * 100), natwire.Introduction(("192.0.2.1", 4000), b"\x01" * 60),
        natwire.Relay(tag, other, b"\x03" * 80), natwire.Relayed(other, b"\x03" * 80))]


# -- mutations ---------------------------------------------------------------------


def mutate(rng, data, samples):
    data = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 8))):
        choice = rng.randrange(8)
        position = rng.randrange(len(data) + 1)
        if choice == 0 and data:
            data[min(position, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif choice == 1 and data:
            data[min(position, len(data) - 1)] = rng.choice(INTERESTING)
        elif choice == 2:
            data[position:position] = bytes(rng.choice(INTERESTING) for _ in range(rng.randint(1, 4)))
        elif choice == 3 and data:
            del data[position:position + rng.randint(1, 8)]
        elif choice == 4:
            del data[position:]
        elif choice == 5 and data:
            end = min(len(data), position + rng.randint(1, 32))
            data[position:position] = data[position:end] * rng.randint(1, 4)
        elif choice == 6:
            other = rng.choice(samples)
            cut = rng.randrange(len(other) + 1)
            data = data[:position] + other[cut:]
        else:
            data[position:position] = rng.randbytes(rng.randint(1, 16))
    return bytes(data)


def inputs(rng, samples, count, max_random=1500):
    for i in range(count):
        if i % 3 == 0:
            size = rng.choice((rng.randint(0, 8), rng.randint(0, 64), rng.randint(0, max_random)))
            data = rng.randbytes(size)
            if data and rng.random() < 0.5:  # give type-dispatching decoders a known first byte
                data = rng.choice(samples)[:1] + data[1:]
            yield data
        else:
            yield mutate(rng, rng.choice(samples), samples)


# -- decoders ----------------------------------------------------------------------


class Target:
    """One decoder: `run(data)` decodes; `errors` are the documented failures."""

    def __init__(self, name, run, errors, samples):
        self.name, self.run, self.errors, self.samples = name, run, errors, samples


def presence_targets():
    """Presence records, if kadchat.presence exists: open_record on mutated items,
    and on sealed, signed records whose padded plaintext is mutated."""
    try:
        from kadchat import presence
        from kadchat.blinding import BlindedKey
        from kadchat.identity import Identity
        from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt
        from nacl.signing import SigningKey
    except ImportError:
        return []
    identity = Identity(SigningKey(hashlib.sha256(b"fuzz").digest()), "fuzz")
    epoch = 5_000_000
    record = presence.make_record(identity, epoch, presence.Presence(
        "online", (("192.0.2.1", 4000), ("10.0.0.2", 4000)), presence.CONSISTENT,
        (("198.51.100.7", 6881),), 1_700_000_000.0), seq=1)
    blinded = BlindedKey(identity.signing_key, epoch)
    key = presence.presence_key(identity.public_key, epoch)

    def open_fields(data):
        # The bytes become an item's v, sig or k (the fields a stranger controls).
        field = data[:1]
        rest = data[1:]
        if field == b"k":
            item = MutableItem(rest, record.salt, record.seq, record.v, record.sig)
        elif field == b"s":
            item = MutableItem(record.k, record.salt, record.seq, record.v, rest)
        else:
            item = MutableItem(record.k, record.salt, record.seq, rest, record.sig)
        presence.open_record(identity.public_key, epoch, item)

    def open_sealed(padded):
        padded = padded[:900]  # a longer record could not be put (v is at most 1000 bytes)
        nonce = hashlib.sha256(padded).digest()[:24]
        sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(padded, blinded.public_key, nonce, key)
        item = MutableItem.create(blinded.public_key, blinded.sign, nonce + sealed, 2, presence.SALT)
        presence.open_record(identity.public_key, epoch, item)

    # The genuine plaintext, recovered through the module's own encoder.
    plain = presence._encode_payload(presence.Presence(
        "away", (("192.0.2.1", 4000),), presence.RANDOM, (("198.51.100.7", 6881),), 1_700_000_000.5))
    field_samples = [b"v" + record.v, b"s" + record.sig, b"k" + record.k]
    return [
        Target("presence.open_record(fields)", open_fields, (presence.PresenceError,), field_samples),
        Target("presence.open_record(sealed payload)", open_sealed, (presence.PresenceError,),
               [plain, plain[:2] + b"d1:s6:onlinee" + plain[15:]]),
    ]


def request_targets():
    """Contact requests (kadchat.requestwire): the datagram as a stranger sends it, and
    well-sealed bodies with mutated contents (what reaches the parser behind the box)."""
    from kadchat import requestwire
    from nacl.public import SealedBox
    from nacl.signing import SigningKey
    callee, sender = SigningKey(hashlib.sha256(b"callee").digest()), SigningKey(hashlib.sha256(b"sender").digest())
    callee_key, now = bytes(callee.verify_key), 1_700_000_000.0
    opener, sealer = SealedBox(callee.to_curve25519_private_key()), SealedBox(callee.verify_key.to_curve25519_public_key())
    genuine = requestwire.make_request(sender, callee_key, "sender", "a note", now)

    def open_sealed(body):
        requestwire.open_request(opener, callee_key, bytes([requestwire.REQUEST]) + sealer.encrypt(body), now)

    return [
        Target("requestwire.open_request", lambda data: requestwire.open_request(opener, callee_key, data, now),
               (requestwire.RequestError,), [genuine]),
        Target("requestwire.open_request(sealed body)", open_sealed, (requestwire.RequestError,),
               [opener.decrypt(genuine[1:])]),
    ]


def targets():
    from kadchat import wire
    from kadchat.nat import natwire
    return [
        Target("kademlia.bencode.decode", bencode.decode, (bencode.DecodeError,), bencode_samples()),
        Target("kademlia.krpc.decode_message", krpc.decode_message, (krpc.MalformedMessage,),
               krpc_samples()),
        Target("kadchat.wire.decode", wire.decode, (wire.WireError,), wire_samples()),
        Target("kadchat.wire.decode_record", wire.decode_record, (wire.WireError,), record_samples()),
        Target("kadchat.nat.natwire.decode", natwire.decode, (natwire.NatWireError,), natwire_samples()),
        *presence_targets(),
        *request_targets(),
    ]


def fuzz(target, count, seed, deadline):
    rng = random.Random(f"{seed}/{target.name}")
    started = time.monotonic()
    accepted = rejected = done = 0
    crashes, seen = [], set()
    for data in inputs(rng, target.samples, count):
        if time.monotonic() > deadline:
            break
        done += 1
        try:
            target.run(data)
            accepted += 1
        except target.errors:
            rejected += 1
        except Exception as e:  # a crash: anything undocumented
            where = traceback.extract_tb(e.__traceback__)[-1]
            signature = (type(e).__name__, where.filename, where.lineno)
            if signature not in seen:
                seen.add(signature)
                if len(crashes) < KEEP_CRASHES:
                    crashes.append({"exception": f"{type(e).__name__}: {e}"[:300],
                                    "at": f"{os.path.relpath(where.filename)}:{where.lineno}",
                                    "input_hex": data[:400].hex()})
    return {"inputs": done, "accepted": accepted, "rejected": rejected,
            "distinct_crashes": len(seen), "seconds": round(time.monotonic() - started, 1),
            "crashes": crashes}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=10_000, help="inputs per decoder")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated substrings of decoder names")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="overall time budget")
    args = parser.parse_args(argv)
    chosen = [t for t in targets()
              if not args.only or any(part in t.name for part in args.only.split(","))]
    deadline = time.monotonic() + args.max_seconds
    report = {"inputs_per_decoder": args.inputs, "seed": args.seed, "decoders": {}}
    for target in chosen:
        report["decoders"][target.name] = fuzz(target, args.inputs, args.seed, deadline)
    report["total_inputs"] = sum(d["inputs"] for d in report["decoders"].values())
    report["total_distinct_crashes"] = sum(d["distinct_crashes"] for d in report["decoders"].values())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
