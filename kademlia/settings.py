"""Tunables of a DHT node, with the defaults DESIGN.md agrees on."""

from dataclasses import dataclass


@dataclass(frozen=True)
class DHTSettings:
    k: int = 8  # bucket size and replication factor
    alpha: int = 3  # parallel queries per lookup
    query_timeout: float = 2.0  # hard limit for one KRPC query
    stall_floor: float = 0.01  # adaptive per-query timeouts stay within these
    default_ttl: int = 600  # items put without `ttl`
    max_ttl: int = 600  # the longest this node keeps anything
    max_items: int = 100_000
    max_items_per_ip: int = 100
    queries_per_ip_per_second: float = 250.0
    query_burst_per_ip: int = 500
    datagrams_per_ip_per_second: float = 2000.0  # the non-KRPC ones (chat, NAT traversal)
    datagram_burst_per_ip: int = 4000
    token_rotation: float = 300.0
    maintenance_interval: float = 60.0  # expire, refresh buckets, ping questionable nodes
    republish_interval: float = 300.0  # push held items to the closest nodes again
    # An item with longer than this left is pushed again about this often, and not
    # by a replica that saw a fellow replica's get for it meanwhile (Kademlia 2.5):
    # 8 replicas each re-getting a 51 h dead drop every 5 minutes made most of a
    # swarm's traffic.
    long_republish_interval: float = 3600.0
    # BEP 42: ignore nodes whose id does not fit their IP ("public": local networks
    # exempt, as the BEP says; "all": checked too, for the simulator's 10/8 swarm).
    # Our own id must fit: kademlia.nodeid.node_id_for(external_ip, os.urandom).
    node_id_check: str = "off"
    # Mainline mode: our queries to one IP at most one per this many seconds (0: unpaced);
    # libtorrent blocks an IP past about 5 packets a second (kademlia.pacing).
    pace_interval: float = 0.0
    # What a stranger (a source that has not proven its address) can make us do.
    max_pending_queries: int = 4096  # our queries in flight; past this new ones are refused
    reflection_factor: int = 3  # answers to unproven sources: at most this times the query's bytes
    unproven_value_bytes_per_second: float = 3000.0  # BEP 44 values to one unproven IP
    unproven_value_burst: int = 6000
    verify_per_second: float = 10.0  # pings to newly met nodes, before any hand-over
    verify_burst: int = 20
    handover_per_second: float = 20.0  # items handed over, all contacts together (0: none)
    handover_burst: int = 40
    handover_per_contact: int = 16  # items looked at and handed to one newly met node
