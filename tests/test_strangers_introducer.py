"""A stranger filling a real dedicated server's introducer table from many loopback addresses
(issue 10, finding 5: 313 addresses filled the 10,000 registrations in 1.6 s, and then a
legitimate client got no answer)."""

import select
import socket
import time

import pytest

from kadchat.nat import natwire
from tests.client_helpers import procs  # noqa: F401 (a fixture)

ATTACKER_ADDRESSES = 313
TAGS_PER_ADDRESS = 32  # the per-IP cap
ATTACK_SECONDS = 20  # bound on the whole attack
PACE = 100  # datagrams between short pauses: past a few hundred queued, loopback drops them


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
              for n, s in enumerate(sockets))
        cookies = {}
        while len(cookies) < len(sockets) and time.monotonic() < deadline:
            for s in select.select(sockets, [], [], 0.5)[0]:
                cookies[s] = natwire.decode(s.recv(2048)).cookie
        paced((s, natwire.encode(natwire.Register((n * TAGS_PER_ADDRESS + t).to_bytes(natwire.TAG_SIZE, "big"),
                                                  cookies[s])), server)
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
    tag = b"L" * natwire.TAG_SIZE
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as legit, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller:
        legit.bind(("127.0.0.1", 0))
        caller.bind(("127.0.0.2", 0))
        first = exchange(legit, natwire.encode(natwire.Register(tag)), server)
        assert first is not None, "the server does not answer at all after the attack"
        answer = exchange(legit, natwire.encode(natwire.Register(tag, first.cookie)), server)
        assert answer is not None, (
            f"a legitimate registration got no answer after the attacker had {confirmed} registrations "
            f"confirmed from {ATTACKER_ADDRESSES} addresses")
        caller.sendto(natwire.encode(natwire.Introduce(tag, b"\x01hello")), server)
        legit.settimeout(2.0)
        introduction = natwire.decode(legit.recvfrom(2048)[0])
        assert introduction == natwire.Introduction(caller.getsockname(), b"\x01hello")
    assert confirmed <= 2 * 128, f"{confirmed} registrations from two /24 networks"
