"""A stranger flooding one chat endpoint with handshake initiations, as fast as it can.

    python3 tests/chat_flooder.py PORT CALLEE_KEY_HEX SECONDS

The initiations are genuine ones from a stranger's identity (made by a real
SessionManager, so they are in this tree's wire format), a pool of them
sent again and again. As root, they leave a raw socket with spoofed sources
all over 127.1.0.0-127.254.255.255 (never outside 127.0.0.0/8; the contacts
sit on 127.0.0.1); otherwise from one ordinary UDP socket. Prints `flooding`
when it starts, then one JSON line: {"sent": N, "seconds": S, "rate": N/S,
"spoofed": bool}. `Flooder` runs it as a child of a reactor.
"""

import json
import os
import random
import socket
import struct
import sys
import time
from pathlib import Path

from nacl.signing import SigningKey
from twisted.internet import defer, protocol
from twisted.internet.task import Clock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kadchat.sessions import SessionManager  # noqa: E402

POOL = 64  # distinct initiations
TARGET = "127.0.0.1"


def pin_to_last_cpu(pid):
    """An attacker elsewhere does not take its victim's CPU: on one machine, the
    flooder keeps to the last CPU and its victim (`pin_to_other_cpus`) to the others.
    Returns the CPUs `pid` could use before (None with a single CPU: nothing to split)."""
    return _pin(pid, lambda cpus: {cpus[-1]})


def pin_to_other_cpus(pid):
    return _pin(pid, lambda cpus: set(cpus[:-1]))


def _pin(pid, choose):
    cpus = sorted(os.sched_getaffinity(pid))
    if len(cpus) < 2:
        return None
    os.sched_setaffinity(pid, choose(cpus))
    return set(cpus)


def stranger_initiations(callee_key, count=POOL):
    """`count` initiations from one stranger to `callee_key`, as its session layer sends them."""
    sent = []
    stranger = SigningKey.generate()
    for _ in range(count):
        manager = SessionManager(Clock(), lambda data, addr: sent.append(data), stranger,
                                 lambda key: True, lambda *a: None, lambda *a: None)
        manager.set_candidates(callee_key, [(TARGET, 9)])
        manager.send(callee_key, b"hello")
    return sent


def spoofed_packets(payloads, port, rng):
    """IPv4+UDP datagrams to 127.0.0.1:port from random 127.x.y.z sources (x >= 1)."""
    packets = []
    for payload in payloads:
        for _ in range(16):
            source = bytes([127, rng.randrange(1, 255), rng.randrange(256), rng.randrange(1, 255)])
            udp_length = 8 + len(payload)
            # Linux fills in the IP checksum; a UDP checksum of 0 means none (RFC 768).
            ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + udp_length, 0, 0, 64, socket.IPPROTO_UDP, 0,
                             source, socket.inet_aton(TARGET))
            udp = struct.pack(">HHHH", rng.randrange(1024, 65536), port, udp_length, 0)
            packets.append(ip + udp + payload)
    rng.shuffle(packets)
    return packets


def flood(port, callee_key, seconds):
    pin_to_last_cpu(0)
    payloads = stranger_initiations(callee_key)
    spoofed = os.geteuid() == 0
    if spoofed:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        packets = [(p, (TARGET, 0)) for p in spoofed_packets(payloads, port, random.Random(4))]
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        packets = [(p, (TARGET, port)) for p in payloads]
    print("flooding", flush=True)
    sent, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for packet, to in packets:
            try:
                sock.sendto(packet, to)
            except OSError:  # a full send buffer (ENOBUFS): keep going
                pass
        sent += len(packets)
    elapsed = time.perf_counter() - started
    sock.close()
    return {"sent": sent, "seconds": round(elapsed, 3), "rate": round(sent / elapsed), "spoofed": spoofed}


class Flooder(protocol.ProcessProtocol):
    """This script as a child process: `started` fires when it floods, `result` with its JSON."""

    def __init__(self, reactor, port, callee_key, seconds):
        self.started, self.result = defer.Deferred(), defer.Deferred()
        self._out, self._err = b"", b""
        args = [sys.executable, __file__, str(port), callee_key.hex(), str(seconds)]
        self._process = reactor.spawnProcess(self, sys.executable, args, env=os.environ)

    def outReceived(self, data):
        self._out += data
        if not self.started.called and b"flooding\n" in self._out:
            self.started.callback(None)

    def errReceived(self, data):
        self._err += data

    def processEnded(self, reason):
        lines = self._out.decode().split("\n")
        if not self.started.called:
            self.started.errback(RuntimeError(f"the flooder did not start: {self._err.decode()[-500:]}"))
        if len(lines) > 1 and lines[-2].startswith("{"):
            self.result.callback(json.loads(lines[-2]))
        else:
            self.result.errback(RuntimeError(f"the flooder failed: {self._err.decode()[-500:]}"))

    def kill(self):
        """(for cleanups) end it now if it still runs"""
        if self._process.pid is not None:
            self._process.signalProcess("KILL")


if __name__ == "__main__":
    print(json.dumps(flood(int(sys.argv[1]), bytes.fromhex(sys.argv[2]), float(sys.argv[3]))), flush=True)
