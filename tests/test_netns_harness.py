"""The namespace lab itself: addressing, both NAT kinds, the inbound firewall,
hole punching, loss rules and clean-up. Needs root (skips otherwise, fails on CI)."""

import os
import subprocess
import time

import pytest

from tests.netns import Lab, _namespaces, lab, require_netns  # noqa: F401 (lab is a fixture)

pytestmark = [pytest.mark.netns, pytest.mark.timeout(30)]

ECHO_PORT = 3478
CLIENT_PORT = 4000


def two_echo_servers(lab):
    return [lab.udp_agent(lab.add_public_host(name), ECHO_PORT, echo=True) for name in ("echo1", "echo2")]


def punch(a, a_mapping, b, b_mapping, duration):
    """Both sides send to the other's public mapping every ~0.1 s until both
    have heard from the other or `duration` s pass; returns what each got."""
    got_a = got_b = None
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline and not (got_a and got_b):
        if not got_b:
            a.send(b_mapping, "punch from a")
        if not got_a:
            b.send(a_mapping, "punch from b")
        got_a = got_a or a.receive(0.05, sender=b_mapping)
        got_b = got_b or b.receive(0.05, sender=a_mapping)
    return got_a, got_b


def received_until(agent, marker, timeout):
    """Texts the agent receives before `marker` arrives."""
    texts = []
    deadline = time.monotonic() + timeout
    while True:
        datagram = agent.receive(deadline - time.monotonic())
        assert datagram is not None, f"{marker!r} never arrived; got {len(texts)} datagrams"
        if datagram[1] == marker:
            return texts
        texts.append(datagram[1])


def test_private_host_is_seen_at_its_routers_public_address(lab):
    echo = lab.udp_agent(lab.add_public_host("echo"), ECHO_PORT, echo=True)
    nat = lab.add_nat("home", "consistent")
    alice = lab.add_private_host("alice", nat)
    client = lab.udp_agent(alice, CLIENT_PORT)

    seen_ip, _ = client.observed_address(echo.address)

    assert alice.address.startswith("10.200.")
    assert seen_ip == nat.address != alice.address


def test_consistent_nat_keeps_one_mapping_for_every_destination(lab):
    echo1, echo2 = two_echo_servers(lab)
    nat = lab.add_nat("home", "consistent")
    client = lab.udp_agent(lab.add_private_host("alice", nat), CLIENT_PORT)

    first = client.observed_address(echo1.address)
    second = client.observed_address(echo2.address)

    assert first == second == (nat.address, CLIENT_PORT)  # Linux masquerade keeps a free source port


def test_random_nat_maps_each_destination_to_its_own_port(lab):
    echo1, echo2 = two_echo_servers(lab)
    nat = lab.add_nat("office", "random")
    client = lab.udp_agent(lab.add_private_host("alice", nat), CLIENT_PORT)

    first = client.observed_address(echo1.address)
    second = client.observed_address(echo2.address)

    assert first[0] == second[0] == nat.address
    assert first[1] != second[1]


def test_unsolicited_inbound_udp_does_not_reach_the_private_host(lab):
    echo = lab.udp_agent(lab.add_public_host("echo"), ECHO_PORT, echo=True)
    stranger_host = lab.add_public_host("stranger")
    nat = lab.add_nat("home", "consistent")
    alice = lab.add_private_host("alice", nat)
    client = lab.udp_agent(alice, CLIENT_PORT)
    mapping = client.observed_address(echo.address)
    # Even a neighbour that routes the private network through the router gets nothing in.
    lab.call(stranger_host, ["ip", "route", "add", str(nat.lan), "via", nat.address])
    stranger = lab.udp_agent(stranger_host, ECHO_PORT)
    echo_host_other_port = lab.udp_agent(lab.host("echo"), ECHO_PORT + 1)

    stranger.send(mapping, "from a stranger")
    stranger.send((alice.address, CLIENT_PORT), "routed to the private address")
    echo_host_other_port.send(mapping, "known host, other port")

    assert client.receive(1.0) is None
    assert client.observed_address(echo.address) == mapping  # the solicited path still works


def test_hole_punching_succeeds_between_consistent_nats_despite_an_early_punch(lab):
    echo = lab.udp_agent(lab.add_public_host("echo"), ECHO_PORT, echo=True)
    a = lab.udp_agent(lab.add_private_host("alice", lab.add_nat("nat-a", "consistent")), CLIENT_PORT)
    b = lab.udp_agent(lab.add_private_host("bob", lab.add_nat("nat-b", "consistent")), CLIENT_PORT)
    a_mapping = a.observed_address(echo.address)
    b_mapping = b.observed_address(echo.address)
    # One side's first punch arrives before the other has sent anything: it is
    # dropped, and must not spoil the mapping the other side opens next.
    a.send(b_mapping, "early punch from a")
    assert b.receive(0.3) is None

    got_a, got_b = punch(a, a_mapping, b, b_mapping, duration=5.0)

    assert got_a == (b_mapping, "punch from b")
    assert got_b == (a_mapping, "punch from a")


def test_hole_punching_fails_between_random_nats(lab):
    echo = lab.udp_agent(lab.add_public_host("echo"), ECHO_PORT, echo=True)
    a = lab.udp_agent(lab.add_private_host("alice", lab.add_nat("nat-a", "random")), CLIENT_PORT)
    b = lab.udp_agent(lab.add_private_host("bob", lab.add_nat("nat-b", "random")), CLIENT_PORT)
    a_mapping = a.observed_address(echo.address)
    b_mapping = b.observed_address(echo.address)

    punch(a, a_mapping, b, b_mapping, duration=2.0)

    assert a.receive(0.2) is None  # nothing at all, from any address
    assert b.receive(0.2) is None


def test_loss_drops_about_the_configured_fraction_each_way(lab):
    sender = lab.udp_agent(lab.add_public_host("sender"), 5000)
    receiver = lab.udp_agent(lab.add_public_host("receiver"), 5000)
    sent = 400

    # Sender's outbound rule, then receiver's inbound rule: ~70 % arrive each time
    # (binomial sd ~9; the bounds are loose on purpose).
    for lossy in (sender.process.host, receiver.process.host):
        lab.loss(lossy, 0.3)
        for _ in range(sent // 50):  # in batches, well within the socket buffers
            sender.send(receiver.address, "x", count=50)
            time.sleep(0.01)
        lab.loss(lossy, 0.0)
        sender.send(receiver.address, "end")
        arrived = len(received_until(receiver, "end", timeout=5.0))
        assert 0.55 * sent <= arrived <= 0.85 * sent, f"{arrived} of {sent} arrived via {lossy.name}"

    # Loss 0 removed the rules: everything arrives again.
    sender.send(receiver.address, "y", count=100)
    sender.send(receiver.address, "end")
    assert len(received_until(receiver, "end", timeout=5.0)) == 100
    tables = lab.call(sender.process.host, ["nft", "list", "tables"]).stdout
    assert "kadchat_loss" not in tables


def test_only_private_hosts_have_a_default_route_and_only_to_their_router(lab):
    public = lab.add_public_host("server")
    nat = lab.add_nat("home", "random")
    alice = lab.add_private_host("alice", nat)
    outside = "203.0.113.7"  # TEST-NET-3: `ip route get` only asks the table, sends nothing

    for host in (public, nat):
        assert lab.call(host, ["ip", "route", "get", outside], check=False).returncode != 0
    assert f"via {nat.lan[1]}" in lab.call(alice, ["ip", "route", "get", outside]).stdout
    assert lab.call(nat, ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"
    assert lab.call(public, ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "0"


def root_veths():
    return subprocess.run(["ip", "-o", "link", "show", "type", "veth"],
                          capture_output=True, text=True, check=True).stdout


def test_close_removes_processes_namespaces_veths_and_rules_and_can_repeat():
    require_netns()
    veths_before = root_veths()
    with Lab() as lab:
        echo = lab.udp_agent(lab.add_public_host("echo"), ECHO_PORT, echo=True)
        nat = lab.add_nat("home", "random")
        client = lab.udp_agent(lab.add_private_host("alice", nat), CLIENT_PORT)
        lab.loss(nat, 0.1)
        assert "kadchat_nat" in lab.call(nat, ["nft", "list", "tables"]).stdout
        created = lab.namespaces
        log_dir = lab.log_dir
    lab.close()  # a second close is harmless

    assert created and not set(created) & set(_namespaces())
    assert echo.process.returncode is not None and client.process.returncode is not None
    assert root_veths() == veths_before
    assert not os.path.exists(log_dir)


def test_close_runs_when_the_test_body_fails():
    require_netns()
    with pytest.raises(RuntimeError, match="boom"):
        with Lab() as lab:
            lab.add_nat("home", "consistent")
            created = lab.namespaces
            raise RuntimeError("boom")
    assert not set(created) & set(_namespaces())


def test_start_removes_leftovers_of_dead_runs_only():
    require_netns()
    finished = subprocess.Popen(["true"])
    finished.wait()
    stale = f"kcnet{finished.pid}x1-stale"
    ours = f"kcnet{os.getpid()}x999-live"
    for netns in (stale, ours):
        subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        with Lab():
            remaining = _namespaces()
        assert stale not in remaining
        assert ours in remaining
    finally:
        for netns in (stale, ours):
            subprocess.run(["ip", "netns", "delete", netns], capture_output=True)
