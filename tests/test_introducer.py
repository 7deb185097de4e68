"""The introducer: registrations, introductions and a bounded relay (Clock-driven)."""

from twisted.internet.task import Clock

from kadchat.nat import natwire
from kadchat.nat.introducer import Introducer, RelayBudget
from tests.nat_helpers import register as signed, tag

ALICE, BOB, MALLORY = ("127.0.0.2", 4000), ("127.0.0.3", 5000), ("127.0.0.4", 6000)
TAG_A, TAG_B = tag(b"A"), tag(b"B")


def make(budget=None):
    clock, sent = Clock(), []
    introducer = Introducer(clock, lambda data, addr: sent.append((natwire.decode(data), addr)), budget=budget)
    introducer.sent = sent
    return clock, sent, introducer


def register(introducer, owned_tag, address):
    """The round trip a client makes: a REGISTER, then one echoing the cookie."""
    introducer.handle(signed(owned_tag), address)
    reply, _ = introducer.sent[-1]
    introducer.handle(signed(owned_tag, reply.cookie), address)


def test_register_answers_with_observed_address_and_a_cookie_then_registers_with_it():
    _, sent, introducer = make()
    introducer.handle(signed(TAG_A), ALICE)
    (reply, to), = sent
    assert (reply.tag, reply.observed, to) == (TAG_A, ALICE, ALICE)
    assert introducer.address_of(TAG_A) is None  # not before the cookie comes back
    introducer.handle(signed(TAG_A, reply.cookie), ALICE)
    assert introducer.address_of(TAG_A) == ALICE
    assert sent[-1] == (natwire.Registered(TAG_A, ALICE, reply.cookie), ALICE)


def test_a_registration_from_a_spoofed_address_never_takes_effect():
    _, sent, introducer = make()
    register(introducer, TAG_A, MALLORY)
    cookie = sent[-1][0].cookie
    introducer.handle(signed(TAG_B, cookie), BOB)  # MALLORY's cookie, BOB's address
    introducer.handle(signed(TAG_B, bytes(8)), BOB)
    assert introducer.address_of(TAG_B) is None
    assert [to for _, to in sent[-2:]] == [BOB, BOB]  # the cookies went to BOB, not to the spoofer


def test_introduction_carries_caller_address_and_payload_to_callee():
    _, sent, introducer = make()
    register(introducer, TAG_B, BOB)
    introducer.handle(natwire.Introduce(TAG_B, b"\x01hello"), ALICE)
    assert sent[-1] == (natwire.Introduction(ALICE, b"\x01hello"), BOB)


def test_registration_expires_and_then_nothing_is_introduced():
    clock, sent, introducer = make()
    register(introducer, TAG_B, BOB)
    clock.advance(91)
    introducer.handle(natwire.Introduce(TAG_B, b"\x01x"), ALICE)
    assert len(sent) == 2 and introducer.stats["refused"] == 1


def test_relay_forwards_between_registered_tags():
    _, sent, introducer = make()
    register(introducer, TAG_A, ALICE)
    register(introducer, TAG_B, BOB)
    introducer.handle(natwire.Relay(TAG_B, TAG_A, b"\x03sealed"), ALICE)
    assert sent[-1] == (natwire.Relayed(TAG_A, b"\x03sealed"), BOB)


def test_relay_in_someone_elses_name_is_refused():
    _, sent, introducer = make()
    register(introducer, TAG_A, ALICE)
    register(introducer, TAG_B, BOB)
    introducer.handle(natwire.Relay(TAG_B, TAG_A, b"\x03forged"), MALLORY)
    assert len(sent) == 4 and introducer.stats["refused"] == 1


def test_relay_stops_at_the_byte_budget_of_the_pair():
    _, sent, introducer = make(RelayBudget(max_bytes=100, max_seconds=3600))
    register(introducer, TAG_A, ALICE)
    register(introducer, TAG_B, BOB)
    for _ in range(5):
        introducer.handle(natwire.Relay(TAG_B, TAG_A, b"x" * 30), ALICE)
    assert introducer.stats["relayed_bytes"] == 90


def test_relay_stops_after_the_time_budget_of_the_pair():
    clock, _, introducer = make(RelayBudget(max_bytes=10**9, max_seconds=60))
    register(introducer, TAG_A, ALICE)
    register(introducer, TAG_B, BOB)
    introducer.handle(natwire.Relay(TAG_B, TAG_A, b"x"), ALICE)
    for _ in range(3):  # keep both registrations alive past the budget
        clock.advance(30)
        register(introducer, TAG_A, ALICE)
        register(introducer, TAG_B, BOB)
    introducer.handle(natwire.Relay(TAG_B, TAG_A, b"y"), ALICE)
    assert introducer.stats["relayed_bytes"] == 1


def test_registrations_are_bounded_and_a_full_table_drops_its_stalest():
    clock, _, introducer = make()
    introducer.max_registrations = 3
    for i in range(5):
        register(introducer, tag(bytes([i])), ("127.0.0.9", 1000 + i))
        clock.advance(1)
    assert introducer.registered == 3 and introducer.stats["evicted"] == 2
    assert [introducer.address_of(tag(bytes([i]))) for i in range(5)] == [
        None, None, ("127.0.0.9", 1002), ("127.0.0.9", 1003), ("127.0.0.9", 1004)]


def test_a_live_client_refreshing_keeps_its_place_while_strangers_fill_the_table():
    clock, _, introducer = make()
    introducer.max_registrations = 50
    for i in range(200):  # strangers from many networks, one registration each
        register(introducer, tag(i.to_bytes(16, "big")), (f"127.{i}.0.1", 4000))
        if i % 20 == 0:
            register(introducer, TAG_B, BOB)  # BOB's keep-alive
        clock.advance(0.1)
    assert introducer.address_of(TAG_B) == BOB
    assert introducer.registered == 50


def test_one_network_cannot_fill_the_registrations():
    _, _, introducer = make()
    for host in range(1, 101):
        for port in range(4):
            register(introducer, tag((host * 4 + port).to_bytes(16, "big")), (f"198.51.100.{host}", 5000 + port))
    register(introducer, TAG_B, BOB)
    assert introducer.address_of(TAG_B) == BOB
    assert introducer.registered == introducer.max_per_network + 1
    assert introducer.stats["refused"] == 400 - introducer.max_per_network


def test_hostile_nat_datagrams_raise_only_natwire_error():
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=500, deadline=None)
    @given(st.binary(max_size=1300))
    def check(data):
        try:
            natwire.decode(bytes([0x10 + data[0] % 16]) + data[1:] if data else data)
        except natwire.NatWireError:
            pass

    check()


def test_one_address_cannot_fill_the_registrations():
    _, _, introducer = make()
    for i in range(100):
        register(introducer, tag(i.to_bytes(16, "big")), MALLORY)
    register(introducer, TAG_B, BOB)
    assert introducer.address_of(TAG_B) == BOB
    assert introducer.registered == introducer.max_per_ip + 1


def test_keepalives_of_a_registered_tag_are_never_refused():
    _, sent, introducer = make()
    introducer.max_per_ip = 2
    for _ in range(5):
        register(introducer, TAG_A, ALICE)
    assert len(sent) == 10 and introducer.stats["refused"] == 0


def test_rotating_tags_does_not_escape_the_budget_of_the_sending_ip():
    _, _, introducer = make(RelayBudget(max_bytes=100, max_seconds=3600, max_bytes_per_ip=250))
    register(introducer, TAG_B, BOB)
    for i in range(10):
        rotated = tag(bytes([i]))
        register(introducer, rotated, MALLORY)
        introducer.handle(natwire.Relay(TAG_B, rotated, b"x" * 90), MALLORY)
    assert introducer.stats["relayed_bytes"] == 180


def test_a_stranger_with_the_card_cannot_take_over_a_tag_from_another_address():
    """Issue 12, 1: the tag is computable from the card, a valid proof is not."""
    from nacl.signing import SigningKey

    from kadchat.nat import regproof

    _, sent, introducer = make()
    victim = SigningKey(bytes(range(32)))
    victim_tag = regproof.rendezvous_tag(bytes(victim.verify_key), 7)
    assert regproof.tag_of(regproof.Signers(victim).for_epoch(7).public_key) == victim_tag
    introducer.handle(regproof.make_register(regproof.Signers(victim).for_epoch(7), sent_cookie(introducer, BOB)), BOB)
    assert introducer.address_of(victim_tag) == BOB
    cookie = sent_cookie(introducer, MALLORY)
    forged = [
        natwire.Register(victim_tag, cookie),  # no proof at all
        signed(tag(b"mallory"), cookie)._replace(tag=victim_tag),  # Mallory's own key and signature
        natwire.Register(victim_tag, cookie, regproof.blind_public_key(bytes(victim.verify_key), 7), bytes(64)),
    ]
    for attempt in forged:
        introducer.handle(attempt, MALLORY)
    assert introducer.address_of(victim_tag) == BOB
    assert introducer.stats["bad_proof"] == 3
    introducer.handle(natwire.Introduce(victim_tag, b"\x01call"), ALICE)
    assert sent[-1] == (natwire.Introduction(ALICE, b"\x01call"), BOB)
    assert not [to for _, to in sent if to == MALLORY][1:]  # Mallory got its cookie, nothing else


def test_keepalives_from_the_registered_address_are_not_verified_again(monkeypatch):
    from kadchat.nat import regproof

    _, _, introducer = make()
    register(introducer, TAG_A, ALICE)
    calls, original = [], regproof.is_owner
    monkeypatch.setattr(regproof, "is_owner", lambda r: calls.append(r) or original(r))
    for _ in range(3):
        register(introducer, TAG_A, ALICE)
    register(introducer, TAG_A, ("127.0.0.2", 4001))  # the tag moves: verified
    assert len(calls) == 1


def sent_cookie(introducer, address):
    """The cookie the introducer hands `address` on first contact."""
    introducer.handle(natwire.Register(tag(b"any")), address)
    return introducer.sent[-1][0].cookie
