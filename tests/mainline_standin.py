"""A loopback stand-in for the BitTorrent Mainline DHT: libtorrent sessions (its
Python bindings), each on an address of its own (127.0.42.N), that know each
other and nothing of kadchat. Every DHT packet a session receives is logged by
libtorrent (`dht_pkt_alert`); a thread collects those from our clients'
addresses, so a test can count what each foreign node received from each
client, per second, as libtorrent's own per-IP blocker sees it."""

import re
import threading
import time
from collections import defaultdict

from tests.test_dht_libtorrent import lt

HOSTS = "127.0.42.{}"
INCOMING = re.compile(r"^<== \[([\d.]+):\d+\]")


def session(host):
    return lt.session({
        "listen_interfaces": f"{host}:0", "outgoing_interfaces": host,
        "enable_dht": True, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        # Loopback and same-/24 nodes are kept out of tables and searches by default.
        "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
        "dht_prefer_verified_node_ids": False, "dht_ignore_dark_internet": False,
        "alert_mask": lt.alert.category_t.dht_log_notification, "alert_queue_size": 100_000,
    })


class MainlineStandIn:
    def __init__(self, count=16, watch=lambda ip: ip.startswith("127.0.43.")):
        self._watch = watch
        self.sessions = [session(HOSTS.format(n + 1)) for n in range(count)]
        self.addresses = [(HOSTS.format(n + 1), s.listen_port()) for n, s in enumerate(self.sessions)]
        for s in self.sessions:
            for address in self.addresses:
                s.add_dht_node(address)
        self.received = defaultdict(list)  # (session index, source ip) -> alert times (seconds)
        self.table_sizes = {}  # session index -> nodes in its routing table (post_table_sizes)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def routers(self, count=4):
        """The value of KADCHAT_MAINLINE_ROUTERS that makes some of them our routers."""
        return ",".join(f"{host}:{port}" for host, port in self.addresses[:count])

    def post_table_sizes(self):
        """Ask every session for its routing table's size; `table_sizes` has the answers soon."""
        self.table_sizes = {}
        for s in self.sessions:
            s.post_dht_stats()

    def _collect(self):
        while not self._stopping.is_set():
            for index, s in enumerate(self.sessions):
                for alert in s.pop_alerts():
                    if isinstance(alert, lt.dht_stats_alert):
                        self.table_sizes[index] = sum(b["num_nodes"] for b in alert.routing_table)
                    elif isinstance(alert, lt.dht_pkt_alert):
                        found = INCOMING.match(alert.message())
                        if found and self._watch(found[1]):
                            self.received[index, found[1]].append(alert.timestamp().timestamp())
            time.sleep(0.05)

    def busiest_second(self):
        """(packets, session index, source ip): the most packets one session received
        from one watched source within any one second."""
        worst = (0, None, None)
        for (index, source), times in self.received.items():
            times = sorted(times)
            start = 0
            for end, t in enumerate(times):
                while t - times[start] >= 1.0:
                    start += 1
                worst = max(worst, (end - start + 1, index, source))
        return worst

    def total_from(self, source):
        return sum(len(times) for (_, ip), times in self.received.items() if ip == source)

    def stop(self):
        self._stopping.set()
        self._thread.join(5)
        self.sessions.clear()
