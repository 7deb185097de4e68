"""A chat receiver in its own process, for the SIGKILL test in test_messaging.

    python3 tests/chat_peer_process.py PORT HISTORY_FILE IDENTITY_SEED_HEX CONTACT_KEY_HEX

Prints `ready`, then the hex id of every message it shows, one per line,
flushed at once; runs until killed.
"""

import sys
from pathlib import Path

from nacl.signing import SigningKey
from twisted.internet import defer, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kadchat.messaging import EndpointListener  # noqa: E402
from tests.chat_loopback import listen  # noqa: E402


class _Printer(EndpointListener):
    def message_received(self, peer_key, message):
        print(message.id.hex(), flush=True)



def main(reactor, port, history_file, seed_hex, contact_hex):
    side = listen(reactor, SigningKey(bytes.fromhex(seed_hex)), bytes.fromhex(contact_hex), history_file,
                  port=int(port))
    side.endpoint.subscribe(_Printer())
    print("ready", flush=True)
    return defer.Deferred()  # until killed


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
