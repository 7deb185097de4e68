"""Spoofed-source UDP on loopback, for the stranger tests and bench/strangers.py.

Raw sockets (root only) send IPv4/UDP packets whose source is any address in
127.0.0.0/8; a "victim" socket bound at that address (loopback accepts all of
127/8) captures what the attacked node sends back. Nothing here ever sends to,
or from, an address outside 127.0.0.0/8. Every wait is bounded.
"""

import ipaddress
import os
import select
import socket
import struct
import subprocess
import sys
import time

from kademlia import bencode
from tests.dht_helpers import REPO_ROOT

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def can_spoof():
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _loopback(address):
    if ipaddress.ip_address(address[0]) not in LOOPBACK:
        raise ValueError(f"{address[0]} is not a loopback address: refusing to send")
    return address


def udp_packet(source, destination, payload):
    """An IPv4 header and a UDP header (checksum 0: none, allowed over IPv4)."""
    udp = struct.pack("!HHHH", source[1], destination[1], 8 + len(payload), 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0,
        socket.inet_aton(source[0]), socket.inet_aton(destination[0]),
    )  # the kernel fills in the header checksum
    return header + udp


class RawSender:
    def __init__(self):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self._socket.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)

    def send(self, payload, source, destination):
        packet = udp_packet(_loopback(source), _loopback(destination), payload)
        self._socket.sendto(packet, (destination[0], 0))

    def close(self):
        self._socket.close()


class Endpoint:
    """A UDP socket bound at a loopback address: a victim capturing datagrams, or a
    client asking real questions."""

    def __init__(self, address):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(_loopback(address))
        self.address = self.socket.getsockname()
        self._transaction = 0

    def drain(self, quiet=0.3, limit=3.0):
        """Every datagram arriving until none has for `quiet` s (at most `limit` s)."""
        received = []
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.socket], [], [], quiet)
            if not ready:
                break
            received.append(self.socket.recv(65536))
        return received

    def request(self, destination, method, args, timeout=2.0):
        """One KRPC query from this socket; the decoded reply, or None in time."""
        self._transaction += 1
        transaction = self._transaction.to_bytes(4, "big")
        self.socket.sendto(
            bencode.encode({b"t": transaction, b"y": b"q", b"q": method, b"a": args}),
            _loopback(destination),
        )
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.socket], [], [], left)
            if not ready:
                break
            reply = bencode.decode(self.socket.recv(65536))
            if reply.get(b"t") == transaction:
                return reply
        return None

    def ping_time(self, destination, node_id, timeout=2.0):
        """Seconds until `destination` answers a ping, or None if it does not in time."""
        started = time.monotonic()
        reply = self.request(destination, b"ping", {b"id": node_id}, timeout)
        return None if reply is None else time.monotonic() - started

    def close(self):
        self.socket.close()


def store(client, destination, item, node_id):
    """get (for a token), then put: True if the node accepted `item`."""
    answer = client.request(destination, b"get", {b"id": node_id, b"target": item.target})
    if answer is None or b"r" not in answer:
        return False
    args = {b"id": node_id, b"token": answer[b"r"][b"token"], b"k": item.k, b"seq": item.seq,
            b"sig": item.sig, b"v": item.v}
    if item.salt:
        args[b"salt"] = item.salt
    reply = client.request(destination, b"put", args)
    return reply is not None and reply.get(b"y") == b"r"


class ServerProcess:
    """`dedicated_server.py` on a loopback address, as a child process."""

    def __init__(self, host="127.0.0.1", timeout=15.0):
        self._process = subprocess.Popen(
            [sys.executable, "dedicated_server.py", "-p", "0", "--host", _loopback((host, 0))[0]],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self.address = self._wait_listening(timeout)

    def _wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._process.stdout], [], [], 0.2)
            if ready:
                line = self._process.stdout.readline()
                if line.startswith(b"listening on "):
                    host, port = line.split()[-1].decode().rsplit(":", 1)
                    return host, int(port)
            if self._process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"dedicated_server.py did not start: {line!r}")

    def cpu_seconds(self):
        """User + system CPU time the server has used so far (from /proc)."""
        with open(f"/proc/{self._process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(3)
            except subprocess.TimeoutExpired:  # a frozen reactor never sees SIGTERM
                self._process.kill()
                self._process.wait(10)
        self._process.stdout.close()
