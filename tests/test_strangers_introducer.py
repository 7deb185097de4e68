"""A stranger filling a real dedicated server's introducer table from many loopback addresses
(issue 10, finding 5: 313 addresses filled the 10,000 registrations in 1.6 s, and then a
legitimate client got no answer)."""

import re
import select
import socket
import time

import pytest

from nacl.signing import SigningKey

from kadchat.nat import natwire, regproof
from tests.client_helpers import Processes
from tests.nat_helpers import register as signed, tag as owned_tag

ATTACKER_ADDRESSES = 313
TAGS_PER_ADDRESS = 32  # the per-IP cap
ATTACK_SECONDS = 20  # bound on the whole attack
PACE = 100  # datagrams between short pauses: past a few hundred queued, loopback drops them


@pytest.fixture
def procs():
    started = Processes()
    yield started
    started.stop_all()


def attacker_sockets():
    sockets = []
    for i in range(ATTACKER_ADDRESSES):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.77.{i // 250}.{i % 250 + 1}", 0))
        s.setblocking(False)
        sockets.append(s)
    return sockets


def paced(datagrams):
    for n, (sock, data, to) in enumerate(datagrams):
        sock.sendto(data, to)
        if n % PACE == PACE - 1:
            time.sleep(0.005)


def fill_registrations(server):
    """Every attacker address makes the cookie round trip, then registers its quota of tags;
    returns how many registrations the server confirmed (it answers only those it took)."""
    sockets = attacker_sockets()
    confirmed, deadline = 0, time.monotonic() + ATTACK_SECONDS
    try:
        paced((s, natwire.encode(natwire.Register(n.to_bytes(natwire.TAG_SIZE, "big"))), server)
              for n, s in enumerate(sockets))  # a cookie is handed out without any proof
        tags = [owned_tag(b"attacker %d" % n) for n in range(len(sockets) * TAGS_PER_ADDRESS)]
        cookies = {}
        while len(cookies) < len(sockets) and time.monotonic() < deadline:
            for s in select.select(sockets, [], [], 0.5)[0]:
                cookies[s] = natwire.decode(s.recv(2048)).cookie
        paced((s, natwire.encode(signed(tags[n * TAGS_PER_ADDRESS + t], cookies[s])), server)
              for n, s in enumerate(sockets) if s in cookies for t in range(TAGS_PER_ADDRESS))
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 1.0 and time.monotonic() < deadline:
            for s in select.select(sockets, [], [], 0.2)[0]:
                s.recv(2048)
                confirmed += 1
                quiet_since = time.monotonic()
    finally:
        for s in sockets:
            s.close()
    return confirmed


def exchange(sock, data, to, tries=3):
    """Send and wait for the answer, trying again as a client would."""
    sock.settimeout(1.0)
    for _ in range(tries):
        sock.sendto(data, to)
        try:
            return natwire.decode(sock.recvfrom(2048)[0])
        except socket.timeout:
            continue
    return None


def test_a_table_filling_attempt_leaves_room_for_a_legitimate_registration_and_its_introduction(procs):
    _, server = procs.server()
    confirmed = fill_registrations(server)
    tag = owned_tag(b"legitimate")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as legit, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller:
        legit.bind(("127.0.0.1", 0))
        caller.bind(("127.0.0.2", 0))
        first = exchange(legit, natwire.encode(signed(tag)), server)
        assert first is not None, "the server does not answer at all after the attack"
        answer = exchange(legit, natwire.encode(signed(tag, first.cookie)), server)
        assert answer is not None, (
            f"a legitimate registration got no answer after the attacker had {confirmed} registrations "
            f"confirmed from {ATTACKER_ADDRESSES} addresses")
        caller.sendto(natwire.encode(natwire.Introduce(tag, b"\x01hello")), server)
        legit.settimeout(2.0)
        introduction = natwire.decode(legit.recvfrom(2048)[0])
        assert introduction == natwire.Introduction(caller.getsockname(), b"\x01hello")
    assert confirmed <= 2 * 128, f"{confirmed} registrations from two /24 networks"


def test_a_stranger_with_the_card_re_registering_the_tag_receives_no_introduction(procs, tmp_path):
    """Issue 12, 1, as it was found: the victim's tag re-registered from another
    address every 0.5 s, while a caller asks the introducer to introduce it."""
    log = tmp_path / "server.log"
    _, server = procs.server(log=log)
    victim_key = SigningKey(b"v" * 32)
    epoch = int(time.time() // 300)
    card_tag = regproof.rendezvous_tag(bytes(victim_key.verify_key), epoch)  # all the card gives
    blinded = regproof.Signers(victim_key).for_epoch(epoch)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as victim, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller:
        for s in (victim, attacker, caller):
            s.bind(("127.0.0.1", 0))
        first = exchange(victim, natwire.encode(regproof.make_register(blinded)), server)
        assert exchange(victim, natwire.encode(regproof.make_register(blinded, first.cookie)), server) is not None
        attacker_cookie = exchange(attacker, natwire.encode(natwire.Register(card_tag)), server).cookie
        forgeries = [natwire.Register(card_tag, attacker_cookie),
                     signed(owned_tag(b"attacker"), attacker_cookie)._replace(tag=card_tag)]
        attacker.setblocking(False)
        victim.settimeout(0.5)
        introductions = []
        for n in range(6):
            attacker.sendto(natwire.encode(forgeries[n % 2]), server)
            time.sleep(0.05)
            caller.sendto(natwire.encode(natwire.Introduce(card_tag, b"\x01call %d" % n)), server)
            try:
                introductions.append(natwire.decode(victim.recvfrom(2048)[0]).payload)
            except socket.timeout:
                pass
            time.sleep(0.45)
        stolen = []
        while select.select([attacker], [], [], 0.2)[0]:
            stolen.append(attacker.recv(2048))
    assert stolen == [], "the attacker received datagrams meant for the victim"
    assert len(introductions) >= 5, introductions  # loopback may drop one
    deadline = time.monotonic() + 5
    while not re.search(r", bad proofs [1-6]$", log.read_text(), re.M):  # the status line counts them
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.2)
