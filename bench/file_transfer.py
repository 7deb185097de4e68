"""File transfer speed and what it does to chat, with real client processes (issue 16).

On loopback: a dedicated server and two console clients (client_node.py -N),
contacts of each other. One file goes alice -> bob through kadchat (timed from
/accept to bob's "* received" line), and the same file through a plain TCP
socket on loopback in this process (the baseline; the ratio is what matters on
a shared machine). Then chat latency: alice writes to bob every 50 ms, first
with nothing else going on, then during a second transfer of the file; the
latency is from writing the line to alice's stdin to bob printing it (both
consoles' pipes included). With root, the transfer again in a netns lab with
20% loss each way at bob (tests/netns.py), on a smaller file. Prints one JSON object.

    python3 bench/file_transfer.py [--mb 20] [--loss-mb 3] [--no-loss]
"""

import argparse
import hashlib
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.chat_loopback import percentile  # noqa: E402
from tests.client_helpers import Processes, friends, presence  # noqa: E402

OFFER = r"^\* alice offers (.+) \((.+)\) as #(\d+); /accept \d+$"


def tcp_copy_seconds(path):
    """Seconds to send the file over a loopback TCP connection and write it out again."""
    listener = socket.create_server(("127.0.0.1", 0))
    out_path = str(path) + ".tcp-copy"

    def receive():
        connection, _ = listener.accept()
        with connection, open(out_path, "wb") as out:
            while data := connection.recv(1 << 20):
                out.write(data)
            out.flush()
            os.fsync(out.fileno())

    receiver = threading.Thread(target=receive)
    receiver.start()
    started = time.perf_counter()
    with socket.create_connection(listener.getsockname()) as sender, open(path, "rb") as f:
        sender.sendfile(f)
    receiver.join()
    took = time.perf_counter() - started
    listener.close()
    os.unlink(out_path)
    return took


def transfer(alice, bob, path, timeout=600):
    """Seconds from /accept to bob's "received" line; checks the hash."""
    alice.send_line(f"/send bob {path}")
    offer = bob.expect(OFFER, timeout=30)[3]
    started = time.perf_counter()
    bob.send_line(f"/accept {offer}")
    received = bob.expect(rf"^\* received {re.escape(path.name)} from alice: (.+)$", timeout=timeout)[1]
    took = time.perf_counter() - started
    assert sha(received) == sha(path), "the file arrived damaged"
    os.unlink(received)
    return took


def chat_latencies(alice, bob, count, tag, every=0.05):
    latencies = []
    for i in range(count):
        text = f"{tag}-{i}"
        started = time.perf_counter()
        alice.send_line(f"/msg bob {text}")
        bob.expect(rf"^\[\d\d:\d\d:\d\d\] alice: {re.escape(text)}$", timeout=30)
        latencies.append(time.perf_counter() - started)
        time.sleep(every)
    return latencies


def chat_during_transfer(alice, bob, path):
    """Chat latencies while `path` goes alice -> bob (messages until it is received)."""
    alice.send_line(f"/send bob {path}")
    offer = bob.expect(OFFER, timeout=30)[3]
    bob.send_line(f"/accept {offer}")
    bob.expect(r"^\* receiving ", timeout=30)
    latencies, i = [], 0
    done = rf"^\* received {re.escape(path.name)} from alice"
    while not bob.seen(done):
        latencies += chat_latencies(alice, bob, 1, f"during{i}")
        i += 1
    return latencies


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def loopback(tmp, size):
    tmp.mkdir()
    procs = Processes()
    try:
        _, server = procs.server()
        dirs = friends(tmp, ["alice", "bob"])
        for name, (data_dir, _) in dirs.items():
            (data_dir / "kadchat.conf").write_text(f"refresh_interval = 1\ndownloads = {tmp / (name + '-dl')}\n")
        alice = procs.client(dirs["alice"][0], "-r", bootstrap=server)
        bob = procs.client(dirs["bob"][0], "-r", bootstrap=server, interface="127.0.0.2")
        alice.expect(presence("bob", "connected"), timeout=30)
        bob.expect(presence("alice", "connected"), timeout=30)
        path = tmp / "bench.bin"
        path.write_bytes(os.urandom(size))
        tcp = tcp_copy_seconds(path)
        kadchat = transfer(alice, bob, path)
        idle = chat_latencies(alice, bob, 40, "idle")
        during = tmp / "during.bin"
        os.link(path, during)
        busy = chat_during_transfer(alice, bob, during)
        return {
            "file_mb": size / 1e6,
            "kadchat_mb_per_s": round(size / 1e6 / kadchat, 2),
            "tcp_mb_per_s": round(size / 1e6 / tcp, 1),
            "ratio_kadchat_to_tcp": round(tcp / kadchat, 4),
            "chat_p50_ms_idle": round(1000 * percentile(idle, 0.5), 1),
            "chat_p95_ms_idle": round(1000 * percentile(idle, 0.95), 1),
            "chat_p50_ms_during_transfer": round(1000 * percentile(busy, 0.5), 1),
            "chat_p95_ms_during_transfer": round(1000 * percentile(busy, 0.95), 1),
            "chat_messages_during_transfer": len(busy),
        }
    finally:
        procs.stop_all()


def lossy(tmp, size, probability=0.2):
    from tests.netns import Lab
    from tests.test_netns_chat import start_client, start_server
    tmp.mkdir()
    with Lab() as lab:
        server_host = lab.add_public_host("server")
        alice_host, bob_host = lab.add_public_host("alice"), lab.add_public_host("bob")
        dirs = friends(tmp, ["alice", "bob"])
        start_server(lab, server_host)
        alice = start_client(lab, alice_host, dirs["alice"][0], server_host)
        bob = start_client(lab, bob_host, dirs["bob"][0], server_host, settings=[f"downloads = {tmp / 'dl'}"])
        alice.expect(presence("bob", "connected"), timeout=30)
        bob.expect(presence("alice", "connected"), timeout=30)
        path = tmp / "lossy.bin"
        path.write_bytes(os.urandom(size))
        clean = transfer(alice, bob, path)
        lab.loss(bob_host, probability)
        took = transfer(alice, bob, path)
        return {"loss_file_mb": size / 1e6, "netns_mb_per_s_no_loss": round(size / 1e6 / clean, 2),
                f"netns_mb_per_s_{int(probability * 100)}pct_loss_each_way": round(size / 1e6 / took, 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20)
    parser.add_argument("--loss-mb", type=float, default=3)
    parser.add_argument("--no-loss", action="store_true", help="skip the netns run (it needs root)")
    args = parser.parse_args()
    result = {"load_average_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="kadchat-bench-files-") as tmp:
        result.update(loopback(Path(tmp) / "loopback", int(args.mb * 1e6)))
        if not args.no_loss and os.geteuid() == 0:
            result.update(lossy(Path(tmp) / "netns", int(args.loss_mb * 1e6)))
    result["load_average_at_end"] = os.getloadavg()[0]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
