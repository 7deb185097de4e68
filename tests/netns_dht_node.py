"""A DHT node for the namespace tests: joins through a bootstrap node, then
obeys JSON commands on stdin and reports JSON lines on stdout.

    python3 tests/netns_dht_node.py --bind IP --bootstrap HOST:PORT

stdout: {"event": "listening", "address": [ip, port]}
        {"event": "vote", "responder": [ip, port], "seen": [ip, port]}  (once per pair)
        {"event": "joined", "routing_table": n}
        {"event": "put", "accepted": n, "target": hex}
        {"event": "got", "target": hex, "item": {"seq": n, "v": text} or null}
        {"event": "error", "command": ..., "error": text}
stdin:  {"put": {"seed": hex32, "v": text, "seq": n, "salt": text}}
        {"get": {"public_key": hex32, "salt": text}}
"""

import argparse
import json
import sys

from nacl.signing import SigningKey
from twisted.internet import defer, stdio, task
from twisted.protocols.basic import LineReceiver

from kademlia.items import MutableItem
from kademlia.node import DHTNode


def report(**event):
    print(json.dumps(event), flush=True)


class Commands(LineReceiver):
    delimiter = b"\n"

    def __init__(self, node, done):
        self.node = node
        self.done = done

    def lineReceived(self, line):
        command = json.loads(line)
        if "put" in command:
            d = self.put(**command["put"])
        else:
            d = self.get(**command["get"])
        d.addErrback(lambda f: report(event="error", command=command, error=f.getErrorMessage()))

    @defer.inlineCallbacks
    def put(self, seed, v, seq, salt=""):
        key = SigningKey(bytes.fromhex(seed))
        item = MutableItem.create(
            bytes(key.verify_key), lambda m: key.sign(m).signature, v.encode(), seq, salt.encode()
        )
        accepted = yield self.node.put(item)
        report(event="put", accepted=accepted, target=item.target.hex())

    @defer.inlineCallbacks
    def get(self, public_key, salt=""):
        unsigned = MutableItem(bytes.fromhex(public_key), salt.encode(), 0, b"", bytes(64))
        target = unsigned.target  # SHA1(k + salt)
        item = yield self.node.get(target, salt.encode())
        found = None if item is None else {"seq": item.seq, "v": item.v.decode()}
        report(event="got", target=target.hex(), item=found)

    def connectionLost(self, reason):
        self.done.callback(None)


@defer.inlineCallbacks
def main(reactor, *argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--bootstrap", required=True, metavar="HOST:PORT")
    args = parser.parse_args(argv)
    host, _, port = args.bootstrap.rpartition(":")

    node = DHTNode(reactor)
    report(event="listening", address=list(node.listen(0, args.bind)))
    votes = set()

    def vote(responder, node_id, seen):
        if (tuple(responder), tuple(seen)) not in votes:
            votes.add((tuple(responder), tuple(seen)))
            report(event="vote", responder=list(responder), seen=list(seen))

    node.add_response_observer(vote)
    size = yield node.bootstrap([(host, int(port))])
    report(event="joined", routing_table=size)
    done = defer.Deferred()
    stdio.StandardIO(Commands(node, done), reactor=reactor)
    yield done  # stdin closed: the test is finished with us
    yield node.stop()


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
