"""Which DHT a client rides, and what follows from it.

`private`: the swarm of our own dedicated servers and the nodes in
`bootstrap.txt` / `-I`/`-P`. `mainline`: the public BitTorrent DHT, joined
through its well-known routers, where kadchat must behave as millions of
libtorrent/uTorrent/Transmission nodes expect (issue 14): BEP 42 node ids
(`DHTSettings.node_id_check` on, our id re-derived from the voted address),
BEP 43 read-only while not publicly reachable, at most one query per
`PACE_INTERVAL` to any one IP, presence epochs of an hour (libtorrent keeps
about 700 items in all), puts to the 20 closest nodes until 8 accept, and
introducers found with `get_peers` instead of a server of our own. `auto`
(the default) is `mainline` when no bootstrap node is configured and no
private swarm was joined before: each network keeps its own routing table file
(`PRIVATE_STATE_FILE`, `MAINLINE_STATE_FILE`), and a client that once joined a
private swarm rejoins it through its saved contacts, as it always did.

Tests must never reach the real routers: `KADCHAT_MAINLINE_ROUTERS`
("host:port,host:port", empty for none) replaces the list.
"""

import os
from dataclasses import replace

from kadchat.errors import UserError
from kademlia.settings import DHTSettings

AUTO, MAINLINE, PRIVATE = "auto", "mainline", "private"
NETWORKS = (AUTO, MAINLINE, PRIVATE)
ROUTERS = (
    ("router.bittorrent.com", 6881),
    ("dht.transmissionbt.com", 6881),
    ("router.utorrent.com", 6881),
    ("dht.libtorrent.org", 25401),
)
ROUTERS_ENV = "KADCHAT_MAINLINE_ROUTERS"
# Where the route to the internet starts, for our LAN address: connect() on a UDP
# socket only picks the route, nothing is sent (192.0.2.0/24 is TEST-NET-1).
ROUTE_PROBE = ("192.0.2.1", 6881)
PRIVATE_STATE_FILE = "dht-state.json"
MAINLINE_STATE_FILE = "dht-state-mainline.json"
PRIVATE_EPOCH = 300
MAINLINE_EPOCH = 3600  # one presence key per user per hour: foreign stores are small
PACE_INTERVAL = 0.35  # under 3 queries/s to one IP: under libtorrent's 5/s with room for answers and jitter
PUT_WIDTH = 20  # Pkarr: 20 replicas survive a day on Mainline, one an hour 86% of the time
PUT_QUORUM = 8


def routers(environ=os.environ):
    """The Mainline routers to join through: ROUTERS, or the list in KADCHAT_MAINLINE_ROUTERS."""
    listed = environ.get(ROUTERS_ENV)
    if listed is None:
        return list(ROUTERS)
    found = []
    for entry in filter(None, (e.strip() for e in listed.split(","))):
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UserError(f"{ROUTERS_ENV}: expected host:port entries separated by commas, not {entry!r}")
        found.append((host, int(port)))
    return found


def resolve(config, bootstrap_entries, joined_private=False):
    """`config` with `network` decided (auto: mainline unless a bootstrap node is
    configured or, `joined_private`, a private swarm's routing table is saved) and
    `epoch_seconds` filled in with the network's default if unset."""
    network = config.network
    if network == AUTO:
        configured = config.bootstrap_host is not None or bool(bootstrap_entries) or joined_private
        network = PRIVATE if configured else MAINLINE
    epoch = config.epoch_seconds or (MAINLINE_EPOCH if network == MAINLINE else PRIVATE_EPOCH)
    return replace(config, network=network, epoch_seconds=epoch)


def state_file(config):
    """The routing table's file for a resolved `config`'s network."""
    return MAINLINE_STATE_FILE if config.network == MAINLINE else PRIVATE_STATE_FILE


def join_addresses(config, bootstrap_entries, environ=os.environ):
    """The nodes to join through, first tried first: the configured ones, then (mainline) the routers."""
    given = [(config.bootstrap_host, config.bootstrap_port)] if config.bootstrap_host is not None else []
    given += [address for address in bootstrap_entries if address not in given]
    return given + (routers(environ) if config.network == MAINLINE else [])


def dht_settings(config, **settings):
    """The DHT node's settings for a resolved `config`; `settings` are the mode-independent ones."""
    if config.network == MAINLINE:
        settings.update(node_id_check="public", pace_interval=PACE_INTERVAL)
    return DHTSettings(k=config.k, alpha=config.alpha, **settings)


def publicly_reachable(external, local):
    """Whether nodes can reach us unasked: our voted external address is our own
    socket's (no NAT in between). Unknown counts as not reachable."""
    return external is not None and local is not None and tuple(external) == tuple(local)
