"""The UDP agent that `tests.netns.Lab.udp_agent` starts inside a namespace:
`python3 udp_agent.py PORT [--echo]`. A script of its own, on the standard
library only, since it runs without the project on its path.
"""

import json
import os
import selectors
import socket
import sys


def udp_agent(port, echo):
    """Bound to 0.0.0.0:port. stdin: JSON lines {"to": [ip, port], "data": text,
    "count": n}. stdout: {"bound": [ip, port]}, then {"from": [ip, port], "data": text}
    per datagram received."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    print(json.dumps({"bound": list(sock.getsockname())}), flush=True)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ)
    commands = b""
    while True:
        for key, _ in selector.select():
            if key.fileobj is sock:
                data, source = sock.recvfrom(65536)
                text = data.decode("utf-8", "replace")
                print(json.dumps({"from": list(source), "data": text}), flush=True)
                if echo:
                    sock.sendto(f"seen {source[0]}:{source[1]}".encode(), source)
                continue
            chunk = os.read(sys.stdin.fileno(), 65536)  # not readline: it would hide buffered lines
            if not chunk:
                return
            *lines, commands = (commands + chunk).split(b"\n")
            for line in lines:
                _agent_send(sock, json.loads(line))


def _agent_send(sock, command):
    for _ in range(command.get("count", 1)):
        try:
            sock.sendto(command["data"].encode(), tuple(command["to"]))
        except OSError as e:
            print(json.dumps({"error": str(e)}), flush=True)


if __name__ == "__main__":
    udp_agent(int(sys.argv[1]), "--echo" in sys.argv[2:])
