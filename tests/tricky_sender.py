"""client_node.py with a misbehaving file sender, for tests/test_transfer_e2e.py.

    python3 tests/tricky_sender.py [--corrupt-chunk N] [--offer-name NAME] -- CLIENT_NODE_FLAGS...

--corrupt-chunk N: the first time chunk N is read for sending, one byte of it is
flipped (a sender whose disk or memory went bad once: the receiver must notice).
--offer-name NAME: offers carry NAME as is, not made safe (a hostile sender).
"""

import argparse
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kadchat.transfer import manager, sending  # noqa: E402


def corrupt_once(chunk_index):
    honest, spoilt = sending.read_chunk, []

    def read_chunk(path, index, size):
        data = honest(path, index, size)
        if index == chunk_index and not spoilt:
            spoilt.append(index)
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        return data
    sending.read_chunk = read_chunk


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--corrupt-chunk", type=int)
    parser.add_argument("--offer-name")
    parser.add_argument("client_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.corrupt_chunk is not None:
        corrupt_once(args.corrupt_chunk)
    if args.offer_name is not None:
        manager.safe_name = lambda name: args.offer_name
    argv = args.client_args[1:] if args.client_args[:1] == ["--"] else args.client_args
    sys.argv = [str(ROOT / "client_node.py"), *argv]
    runpy.run_path(sys.argv[0], run_name="__main__")  # the entry script itself, with our patches in place


if __name__ == "__main__":
    main()
