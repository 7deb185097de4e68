import pytest
from nacl.public import SealedBox
from nacl.signing import SigningKey
from twisted.internet.task import Clock

from kadchat.requestwire import (MAX_NOTE_BYTES, OPENS_BURST, REQUEST, SIZE, WINDOW, RequestError, RequestInbox,
                                 make_request, open_request)

ALICE, BOB, MALLORY = (SigningKey(bytes([n]) * 32) for n in (1, 2, 3))
A_KEY = bytes(ALICE.verify_key)
NOW = 1_700_000_000.0


def inbox(clock):
    got = []
    return RequestInbox(clock, ALICE, lambda *request: got.append(request)), got


def test_a_request_opens_for_its_recipient_only_with_the_senders_card_name_and_note():
    clock = Clock()
    clock.advance(NOW)
    alice, got = inbox(clock)
    data = make_request(BOB, A_KEY, "Bob", "hi, it's me ✓", NOW)
    assert data[0] == REQUEST and len(data) == SIZE
    assert len(make_request(BOB, A_KEY, "B", "", NOW)) == SIZE  # the note's length does not show
    alice.received(data, ("127.0.0.2", 5))
    assert got == [(bytes(BOB.verify_key), "Bob", "hi, it's me ✓", ("127.0.0.2", 5))]
    for who in (BOB, MALLORY):  # sealed to Alice: nobody else reads it, the sender included
        with pytest.raises(RequestError):
            open_request(SealedBox(who.to_curve25519_private_key()), bytes(who.verify_key), data, NOW)


def test_forged_stale_and_malformed_requests_are_dropped():
    clock = Clock()
    clock.advance(NOW)
    alice, got = inbox(clock)
    genuine = make_request(BOB, A_KEY, "Bob", "hello", NOW)
    # Mallory cannot ask in Bob's name: she would need Bob's key to sign it.
    body = bytearray(SealedBox(ALICE.to_curve25519_private_key()).decrypt(genuine[1:]))
    body[110:115] = b"ha ha"  # other words under Bob's signature
    forged = bytes([REQUEST]) + SealedBox(ALICE.verify_key.to_curve25519_public_key()).encrypt(bytes(body))
    stale = make_request(BOB, A_KEY, "Bob", "hello", NOW - WINDOW - 1)
    for data in (forged, stale, genuine[:-1], bytes([REQUEST]) + bytes(SIZE - 1)):
        alice.received(data, ("127.0.0.9", 1))
    assert got == [] and alice.dropped == 4
    with pytest.raises(ValueError):
        make_request(BOB, A_KEY, "Bob", "x" * (MAX_NOTE_BYTES + 1), NOW)


def test_a_flood_costs_a_few_opens_a_second_then_nothing():
    clock = Clock()
    clock.advance(NOW)
    alice, got = inbox(clock)
    data = make_request(BOB, A_KEY, "Bob", "", NOW)
    for _ in range(1000):
        alice.received(data, ("127.0.0.9", 1))
    assert len(got) == OPENS_BURST and alice.dropped == 1000 - OPENS_BURST
    clock.advance(1.0)
    alice.received(data, ("127.0.0.9", 1))
    assert len(got) == OPENS_BURST + 1
