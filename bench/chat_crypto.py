"""Cost per chat message: kadchat's sealed datagrams vs. the prototype's simple-crypt.

The prototype encrypted each message with simple-crypt, which derives its key
with PBKDF2 (100,000 rounds of HMAC-SHA256) on every encrypt *and* decrypt;
that is what froze its window. Here both ways run in the same process on the
same messages: kadchat seals and opens with a session key agreed once by the
handshake (ChaCha20-Poly1305); the simple-crypt-style path runs PBKDF2 per
call, then AES-256-CTR with an HMAC-SHA256 tag. Prints one JSON object.

    python3 bench/chat_crypto.py [--messages N] [--slow-messages N] [--size BYTES]
"""

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from nacl.signing import SigningKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kadchat import wire  # noqa: E402
from kadchat.channel import Channel, ChannelStats  # noqa: E402
from kadchat.handshake import Handshake, InitiationGuard, StaticIdentity  # noqa: E402

PBKDF2_ROUNDS = 100_000


def kadchat_session():
    """Two channels from a real handshake, and what that handshake cost."""
    alice, bob = StaticIdentity(SigningKey.generate()), StaticIdentity(SigningKey.generate())
    started = time.perf_counter()
    caller, init = Handshake.initiate(alice, bob.public_key, 1, now=0.0)
    callee, resp = Handshake.respond(bob, wire.decode(init), 2, 0.0, lambda key: True, InitiationGuard(), init)
    keys = caller.receive_response(wire.decode(resp))
    handshake_seconds = time.perf_counter() - started
    return Channel(keys, 0.0, ChannelStats()), Channel(callee.keys, 0.0, ChannelStats()), handshake_seconds


def simplecrypt_style_seal(password, plaintext):
    salt, iv = os.urandom(16), os.urandom(16)
    key = hashlib.pbkdf2_hmac("sha256", password, salt, PBKDF2_ROUNDS, dklen=64)
    encryptor = Cipher(algorithms.AES(key[:32]), modes.CTR(iv)).encryptor()
    body = salt + iv + encryptor.update(plaintext) + encryptor.finalize()
    return body + hmac.digest(key[32:], body, "sha256")


def simplecrypt_style_open(password, data):
    body, tag = data[:-32], data[-32:]
    salt, iv, ciphertext = body[:16], body[16:32], body[32:]
    key = hashlib.pbkdf2_hmac("sha256", password, salt, PBKDF2_ROUNDS, dklen=64)
    if not hmac.compare_digest(tag, hmac.digest(key[32:], body, "sha256")):
        raise ValueError("bad tag")
    decryptor = Cipher(algorithms.AES(key[:32]), modes.CTR(iv)).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def per_message(round_trip, messages):
    started = time.perf_counter()
    for message in messages:
        round_trip(message)
    return (time.perf_counter() - started) / len(messages)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--slow-messages", type=int, default=5)
    parser.add_argument("--size", type=int, default=200, help="bytes of text per message")
    args = parser.parse_args()
    messages = [os.urandom(args.size) for _ in range(args.messages)]

    sender, receiver, handshake_seconds = kadchat_session()
    fast = per_message(lambda m: receiver.open(wire.decode(sender.seal(m, 0.0)), 0.0), messages)
    password = b"correct horse battery staple"
    slow = per_message(lambda m: simplecrypt_style_open(password, simplecrypt_style_seal(password, m)),
                       messages[:args.slow_messages])
    print(json.dumps({
        "message_bytes": args.size,
        "kadchat_seal_open_us_per_message": round(fast * 1e6, 2),
        "kadchat_messages": args.messages,
        "kadchat_handshake_ms_once_per_session": round(handshake_seconds * 1e3, 3),
        "simplecrypt_style_seal_open_ms_per_message": round(slow * 1e3, 2),
        "simplecrypt_style_messages": args.slow_messages,
        "pbkdf2_rounds_per_call": PBKDF2_ROUNDS,
        "ratio_simplecrypt_style_over_kadchat": round(slow / fast),
    }, indent=2))


if __name__ == "__main__":
    main()
