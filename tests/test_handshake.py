"""kadchat.handshake: the Noise-IK-like session handshake."""

import pytest
from nacl.signing import SigningKey

from kadchat import wire
from kadchat.handshake import (
    TRANSITIONS, Handshake, HandshakeError, InitiationGuard, NotAContact, StaleInitiation,
    State, StaticIdentity)

ALICE = SigningKey(b"a" * 32)
BOB = SigningKey(b"b" * 32)
MALLORY = SigningKey(b"m" * 32)
ALICE_KEY = bytes(ALICE.verify_key)
BOB_KEY = bytes(BOB.verify_key)


def everyone(_key):
    return True


def run_handshake(now=1000.0, guard=None):
    alice, bob = StaticIdentity(ALICE), StaticIdentity(BOB)
    caller, init = Handshake.initiate(alice, BOB_KEY, local_index=11, now=now)
    callee, resp = Handshake.respond(bob, wire.decode(init), 22, now, everyone, guard or InitiationGuard(), init)
    keys = caller.receive_response(wire.decode(resp))
    return caller, callee, keys, init, resp


def test_both_sides_agree_on_crossed_keys_and_indexes():
    caller, callee, keys, _, _ = run_handshake()
    assert keys.send_key == callee.keys.receive_key and keys.receive_key == callee.keys.send_key
    assert keys.send_key != keys.receive_key and len(keys.send_key) == 32
    assert (keys.local_index, keys.remote_index) == (11, 22)
    assert (callee.keys.local_index, callee.keys.remote_index) == (22, 11)
    assert keys.peer_key == BOB_KEY and callee.keys.peer_key == ALICE_KEY
    assert caller.state is State.ESTABLISHED and callee.state is State.RESPONDED
    callee.confirm()
    assert callee.state is State.ESTABLISHED


def test_fresh_ephemerals_give_different_keys_each_time():
    first = run_handshake()[2]
    second = run_handshake()[2]
    assert first.send_key != second.send_key


def test_caller_identity_never_travels_in_clear():
    *_, init, resp = run_handshake()
    assert ALICE_KEY not in init and ALICE_KEY not in resp
    assert BOB_KEY not in init and BOB_KEY not in resp


def test_stranger_is_refused_after_decrypting_its_identity():
    seen = []

    def is_contact(key):
        seen.append(key)
        return False

    _, init = Handshake.initiate(StaticIdentity(MALLORY), BOB_KEY, 1, 0.0)
    with pytest.raises(NotAContact):
        Handshake.respond(StaticIdentity(BOB), wire.decode(init), 2, 0.0, is_contact, InitiationGuard(), init)
    assert seen == [bytes(MALLORY.verify_key)]


def test_initiation_for_someone_else_does_not_authenticate():
    _, init = Handshake.initiate(StaticIdentity(ALICE), bytes(MALLORY.verify_key), 1, 0.0)
    with pytest.raises(HandshakeError):
        Handshake.respond(StaticIdentity(BOB), wire.decode(init), 2, 0.0, everyone, InitiationGuard(), init)


@pytest.mark.parametrize("skew", [-121.0, 121.0])
def test_initiation_outside_two_minutes_is_stale(skew):
    _, init = Handshake.initiate(StaticIdentity(ALICE), BOB_KEY, 1, 1000.0)
    with pytest.raises(StaleInitiation):
        Handshake.respond(StaticIdentity(BOB), wire.decode(init), 2, 1000.0 + skew, everyone, InitiationGuard(), init)


def test_replayed_initiation_gets_the_same_answer_and_no_new_session():
    guard = InitiationGuard()
    *_, init, resp = run_handshake(now=50.0, guard=guard)
    assert guard.repeated_answer(init, wire.decode(init), 60.0) == resp


def test_tampered_copy_of_an_answered_initiation_is_refused():
    guard = InitiationGuard()
    *_, init, _ = run_handshake(now=50.0, guard=guard)
    end = wire.INITIATION_MAC1_AT  # the last byte the handshake covers (the macs are outside it)
    forged = init[:end - 1] + bytes([init[end - 1] ^ 1]) + init[end:]
    with pytest.raises(StaleInitiation):
        guard.repeated_answer(forged, wire.decode(forged), 60.0)


def test_a_copy_differing_only_in_its_cookie_mac_gets_the_same_answer():
    guard = InitiationGuard()
    *_, init, resp = run_handshake(now=50.0, guard=guard)
    with_mac2 = init[:wire.INITIATION_MAC2_AT] + b"m" * wire.MAC_SIZE
    assert guard.repeated_answer(with_mac2, wire.decode(with_mac2), 60.0) == resp


def test_answered_initiations_are_forgotten_once_too_old_anyway():
    guard = InitiationGuard(window=120.0)
    *_, init, _ = run_handshake(now=0.0, guard=guard)
    assert guard.repeated_answer(init, wire.decode(init), 241.0) is None
    with pytest.raises(StaleInitiation):
        guard.check_fresh(0.0, 241.0)


def test_guard_memory_is_bounded():
    guard = InitiationGuard(capacity=8)
    for i in range(20):
        fake = wire.Initiation(i, i.to_bytes(32, "big"), b"", b"")
        guard.remember(b"%d" % i, fake, b"r", now=0.0)
    assert len(guard._answered) <= 8


@pytest.mark.parametrize("flip", [1, 5, 40, 56])
def test_tampered_response_is_refused_and_the_caller_keeps_waiting(flip):
    alice, bob = StaticIdentity(ALICE), StaticIdentity(BOB)
    caller, init = Handshake.initiate(alice, BOB_KEY, 11, 0.0)
    _, resp = Handshake.respond(bob, wire.decode(init), 22, 0.0, everyone, InitiationGuard(), init)
    forged = bytearray(resp)
    forged[flip] ^= 0x01
    with pytest.raises(HandshakeError):
        caller.receive_response(wire.decode(bytes(forged)))
    assert caller.state is State.INITIATED
    assert caller.receive_response(wire.decode(resp)).remote_index == 22


def test_response_from_an_impostor_does_not_authenticate():
    alice = StaticIdentity(ALICE)
    caller, init = Handshake.initiate(alice, BOB_KEY, 11, 0.0)
    # Mallory intercepts and answers as if she were Bob, with her own keys.
    with pytest.raises(HandshakeError):
        Handshake.respond(StaticIdentity(MALLORY), wire.decode(init), 22, 0.0, everyone, InitiationGuard(), init)
    fake = wire.encode_response(22, 11, bytes(StaticIdentity(MALLORY).public_key), b"\0" * 16)
    with pytest.raises(HandshakeError):
        caller.receive_response(wire.decode(fake))
    assert caller.state is State.INITIATED


def test_low_order_ephemeral_is_refused_cleanly():
    caller, _ = Handshake.initiate(StaticIdentity(ALICE), BOB_KEY, 11, 0.0)
    with pytest.raises(HandshakeError):
        caller.receive_response(wire.Response(22, 11, bytes(32), bytes(16)))


def test_invalid_peer_identity_fails_the_attempt():
    with pytest.raises(HandshakeError):
        Handshake.initiate(StaticIdentity(ALICE), b"\xff" * 32, 1, 0.0)


def test_transitions_table_has_no_way_out_of_terminal_states():
    assert not [key for key in TRANSITIONS if key[0] in (State.ESTABLISHED, State.FAILED)]


def test_failed_attempt_cannot_complete():
    caller, init = Handshake.initiate(StaticIdentity(ALICE), BOB_KEY, 11, 0.0)
    _, resp = Handshake.respond(StaticIdentity(BOB), wire.decode(init), 22, 0.0, everyone, InitiationGuard(), init)
    caller.fail()
    assert caller.state is State.FAILED
    with pytest.raises(HandshakeError):
        caller.receive_response(wire.decode(resp))
