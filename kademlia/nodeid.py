"""Node ids bound to IP addresses (BEP 42, "DHT Security extension").

A BEP 5 node id is whatever a node says it is, so a coalition can claim ids
next to any key and capture every lookup for it (bench/hostile_sweep.py, kind
"lie"). BEP 42 ties the first 21 bits of an id to the node's IPv4 address:
CRC32-C of the address masked with 03.0f.3f.ff, with a random r in 0..7 in
its top three bits; the id's last byte carries r in its low three bits. An
address can then claim ids in only 8 narrow slices of the id space.

Local-network addresses (10/8, 172.16/12, 192.168/16, 169.254/16, 127/8) are
exempt in BEP 42; `check="all"` checks them too, for the simulator, whose
addresses are all in 10/8.
"""

import ipaddress

MASK = (0x03, 0x0F, 0x3F, 0xFF)
EXEMPT = [ipaddress.ip_network(n) for n in
          ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8")]
CHECKS = ("off", "public", "all")


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _prefix(ip, r):
    """The 21 bits an id must start with, as the top bits of a 32-bit int."""
    masked = bytes(b & m for b, m in zip(ipaddress.IPv4Address(ip).packed, MASK))
    return crc32c(bytes([masked[0] | (r << 5)]) + masked[1:]) & 0xFFFFF800


def node_id_for(ip, random_bytes):
    """A BEP 42 id for IPv4 `ip`; `random_bytes(n)` supplies the free bits."""
    free = random_bytes(20)
    r = free[19] & 7
    top = _prefix(ip, r) | (int.from_bytes(free[:4], "big") & 0x7FF)
    return top.to_bytes(4, "big") + free[4:]


def is_valid(node_id, ip):
    """Whether `node_id` is one that IPv4 `ip` may have under BEP 42."""
    r = node_id[19] & 7
    return int.from_bytes(node_id[:4], "big") & 0xFFFFF800 == _prefix(ip, r)


def is_exempt(ip):
    address = ipaddress.IPv4Address(ip)
    return any(address in network for network in EXEMPT)


def acceptor(check):
    """`accept(node_id, address) -> bool` for a `check` of "public" or "all"."""
    if check not in CHECKS[1:]:
        raise ValueError(f"node id check must be one of {CHECKS}")

    def accept(node_id, address):
        host = address[0]
        try:
            return (check == "public" and is_exempt(host)) or is_valid(node_id, host)
        except ValueError:  # not an IPv4 address
            return False

    return accept
