"""The node's state file: its routing table contacts and, for nodes that keep it, its id, as JSON.

An unreadable file is logged and ignored (the node starts with a new id and
bootstraps); a failed save only costs a bootstrap next time.
"""

import json
import os

from twisted.logger import Logger

from kademlia import krpc

log = Logger()


def load(path):
    """{"node_id": bytes (if saved), "contacts": [(id, (host, port))]}, or {} without a usable file."""
    if not path or not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            raw = json.load(f)
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        contacts = [(bytes.fromhex(i), (h, int(p))) for i, h, p in raw.get("contacts", [])]
        contacts = [(i, a) for i, a in contacts if len(i) == krpc.ID_LENGTH and krpc.is_routable(a)]
        if "node_id" not in raw:
            return {"contacts": contacts}
        node_id = bytes.fromhex(raw["node_id"])
        if len(node_id) != krpc.ID_LENGTH:
            raise ValueError("bad node id length")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        log.warn("ignoring unreadable state file {path}: {error}", path=path, error=e)
        return {}
    return {"node_id": node_id, "contacts": contacts}


def save(path, node_id, contacts):
    """Write atomically (a temporary file, then rename); `node_id` None: the id is not kept."""
    state = {"contacts": [[c.node_id.hex(), *c.address] for c in contacts]}
    if node_id is not None:
        state["node_id"] = node_id.hex()
    temporary = path + ".tmp"
    try:
        with open(temporary, "w") as f:
            json.dump(state, f)
        os.replace(temporary, path)
    except OSError as e:
        log.warn("cannot save state file {path}: {error}", path=path, error=e)
