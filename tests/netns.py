"""A multi-host test lab in Linux network namespaces: public hosts, NAT routers,
hosts behind them, packet loss, and processes run inside.

    with Lab() as lab:
        server = lab.add_public_host("server")
        nat = lab.add_nat("home", "consistent")
        alice = lab.add_private_host("alice", nat)
        proc = lab.run(alice, ["python3", "-c", "..."])

Addresses (chosen not to collide with this machine's own; its eth0 sits on
192.0.2.0/24, so that documentation range is avoided):
- public network 198.51.100.0/24 (RFC 5737 TEST-NET-2): one bridge in the
  lab's "switch" namespace; public hosts and NAT routers' `wan` ports get
  198.51.100.10 upwards;
- behind the i-th NAT (i = 1, 2, ...): 10.200.i.0/24, router `lan` .1, hosts
  .2 upwards; these exist only inside that NAT's namespaces.
No namespace has a link out of the lab, and only private hosts have a default
route (to their own router), so nothing a test sends can leave the lab.

Every namespace, and nothing else, is created by the lab: veth pairs are made
with both ends directly inside lab namespaces, nft tables live in them, and
ip_forward is switched on inside routers only. Deleting the namespaces removes
all of it. Names carry the creating process id (`kcnet<pid>x<n>-<name>`), so
parallel runs never collide and leftovers of dead runs are removed on start.

NAT routers (table `ip kadchat_nat`): masquerade out of `wan`; "consistent"
keeps the source port (Linux's masquerade reuses the mapping's port for every
destination unless the tuple is taken: endpoint-independent mapping),
"random" is `masquerade fully-random` (a new port per destination:
address-dependent mapping, a "symmetric" NAT). New connections arriving on
`wan` are dropped, in input and forward, like a home router's firewall: only
replies to conntrack entries made by outgoing packets come in, so hole punching
is really needed. Dropping (rather than letting the router's own stack refuse
the packet) also keeps an unsolicited packet from leaving a conntrack entry
that would clash with the router's next outgoing mapping for the same pair of
addresses and push that mapping to another port.
"""

import ipaddress
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import pytest

from tests.child_process import ChildProcess

PUBLIC_NETWORK = ipaddress.ip_network("198.51.100.0/24")
FIRST_PUBLIC_HOST = 10
PRIVATE_NETWORK = "10.200.{index}.0/24"
NAT_MODES = {"consistent": "masquerade", "random": "masquerade fully-random"}
NAME_PREFIX = "kcnet"
_LAB_NAME = re.compile(r"^" + NAME_PREFIX + r"(\d+)x\d+-")
_HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_COMMAND_TIMEOUT = 10.0
UDP_AGENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "udp_agent.py")
_labs_in_this_process = itertools.count(1)


class NetnsError(RuntimeError):
    """A command that builds or tears down the lab failed."""


def _command(argv, input=None, check=True, timeout=_COMMAND_TIMEOUT):
    result = subprocess.run(
        argv, input=input, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _namespaces():
    listing = _command(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


def _delete_namespace(netns):
    """Kill whatever still runs inside `netns`, then delete it (gone already is fine)."""
    pids = _command(["ip", "netns", "pids", netns], check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    _command(["ip", "netns", "delete", netns], check=False)


def remove_leftovers():
    """Delete namespaces and log folders of labs whose process has died."""
    for netns in _namespaces():
        match = _LAB_NAME.match(netns)
        if match and not _pid_alive(int(match.group(1))):
            _delete_namespace(netns)
    tmp = tempfile.gettempdir()
    for entry in os.listdir(tmp):
        match = _LAB_NAME.match(entry)
        if match and not _pid_alive(int(match.group(1))):
            shutil.rmtree(os.path.join(tmp, entry), ignore_errors=True)


@dataclass(eq=False)
class Host:
    """A namespace in the lab. `address` is its address on its own link:
    public for public hosts and NAT routers, 10.200.i.x behind a NAT."""

    name: str
    netns: str
    address: str
    nat: "Nat | None" = field(default=None, repr=False)


@dataclass(eq=False)
class Nat(Host):
    """A NAT router: `address` is its public (wan) address, `lan` its private network."""

    mode: str = "consistent"
    lan: ipaddress.IPv4Network = None
    hosts: list = field(default_factory=list, repr=False)


class Process(ChildProcess):
    """A process started in a namespace, with bounded reads of its stdout lines
    (tests.child_process); its stderr goes to a file."""

    def __init__(self, host, argv, popen, stderr_path):
        super().__init__(popen, popen.stdout, popen.stdin)
        self.host = host
        self.argv = argv
        self.stderr_path = stderr_path

    def read_json(self, timeout, where=lambda obj: True):
        """Read lines until a JSON object line for which `where(obj)` holds."""
        def matching(line):
            try:
                obj = json.loads(line)
            except ValueError:
                return None
            return obj if isinstance(obj, dict) and where(obj) else None

        return self.read_until(matching, timeout, "a matching JSON line")

    def json_lines(self):
        """Every JSON object line seen so far (consumed or not)."""
        found = []
        for line in list(self.lines):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                found.append(obj)
        return found

    def stderr_text(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def describe(self):
        return (
            f"[{self.host.name}] {' '.join(self.argv)} (exit {self.popen.poll()})\n"
            f"  stdout tail: {self.lines[-10:]}\n"
            f"  stderr tail: {self.stderr_text()[-1500:]}"
        )


class UdpAgent:
    """One UDP socket in a namespace, driven from the test: send datagrams and
    see what arrives (and from where). With echo on, it answers every datagram
    with `seen HOST:PORT`, the sender's address as it saw it."""

    def __init__(self, process, address):
        self.process = process
        self.address = address  # (ip, port) it is bound to
        self._pending = []  # datagrams read but not yet handed out

    def send(self, to, data, count=1):
        self.process.send_line(json.dumps({"to": list(to), "data": data, "count": count}))

    def receive(self, timeout, sender=None):
        """The next datagram `((ip, port), text)`, only from `sender` if given;
        None if nothing came within `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            for i, (source, data) in enumerate(self._pending):
                if sender is None or source == tuple(sender):
                    return self._pending.pop(i)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                event = self.process.read_json(remaining, lambda obj: "from" in obj)
            except TimeoutError:
                return None
            self._pending.append((tuple(event["from"]), event["data"]))

    def observed_address(self, echo, timeout=3.0, interval=0.2):
        """Our address as the echo agent at `echo` sees it: (ip, port).

        Asks again every `interval` s, so it works through lossy links."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.send(echo, "?")
            reply = self.receive(min(interval, deadline - time.monotonic()), sender=echo)
            if reply is not None:
                ip, _, port = reply[1].removeprefix("seen ").rpartition(":")
                return ip, int(port)
        raise TimeoutError(f"no echo from {echo} within {timeout} s\n{self.process.describe()}")

    def stop(self):
        return self.process.stop()


class Lab:
    """Namespaces, links, NAT and loss rules for one test; `close()` removes them all.

    Use as a context manager, or via the `lab` pytest fixture below."""

    def __init__(self):
        self.prefix = f"{NAME_PREFIX}{os.getpid()}x{next(_labs_in_this_process)}-"
        self.hosts = {}
        self.processes = []
        self.log_dir = None
        self._namespaces = []  # created ones, in order
        self._switch = None
        self._public_hosts = itertools.count(FIRST_PUBLIC_HOST)
        self._switch_ports = itertools.count(1)
        self._nats = 0
        self._closed = False

    # -- life cycle ----------------------------------------------------------

    def start(self):
        """Remove dead runs' leftovers and build the public network's switch."""
        remove_leftovers()
        self.log_dir = tempfile.mkdtemp(prefix=self.prefix + "logs-")
        self._switch = self._new_namespace("switch")
        self._ip(self._switch, "link", "add", "br0", "type", "bridge")
        self._ip(self._switch, "link", "set", "br0", "up")
        return self

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()  # __exit__ does not run when __enter__ fails
            raise

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """Stop every process, delete every namespace (and with them the veths
        and nft tables). Safe to call twice, and after a failed start."""
        if self._closed:
            return
        self._closed = True
        try:
            for process in reversed(self.processes):
                process.stop(timeout=2.0)
        finally:
            for netns in reversed(self._namespaces):
                _delete_namespace(netns)  # also kills whatever still runs inside
            if self.log_dir:
                shutil.rmtree(self.log_dir, ignore_errors=True)

    @property
    def namespaces(self):
        return list(self._namespaces)

    # -- topology ------------------------------------------------------------

    def add_public_host(self, name):
        """A host on the public network, with no route beyond it."""
        host = Host(name, self._new_namespace(name), self._next_public_address())
        self._plug_into_switch(host.netns, "eth0", host.address)
        self.hosts[name] = host
        return host

    def add_nat(self, name, mode="consistent"):
        """A NAT router: `wan` on the public network, a `lan` bridge for the hosts behind it."""
        if mode not in NAT_MODES:
            raise ValueError(f"NAT mode must be one of {sorted(NAT_MODES)}, not {mode!r}")
        self._nats += 1
        lan = ipaddress.ip_network(PRIVATE_NETWORK.format(index=self._nats))
        nat = Nat(name, self._new_namespace(name), self._next_public_address(), mode=mode, lan=lan)
        self._plug_into_switch(nat.netns, "wan", nat.address)
        self._ip(nat.netns, "link", "add", "lan", "type", "bridge")
        self._ip(nat.netns, "addr", "add", f"{lan[1]}/{lan.prefixlen}", "dev", "lan")
        self._ip(nat.netns, "link", "set", "lan", "up")
        self._exec(nat.netns, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        self._nft(nat.netns, self._nat_rules(mode))
        self.hosts[name] = nat
        return nat

    def add_private_host(self, name, nat):
        """A host on `nat`'s LAN, whose default route is the router."""
        nat = self.host(nat)
        address = str(nat.lan[len(nat.hosts) + 2])
        host = Host(name, self._new_namespace(name), address, nat=nat)
        port = f"l{len(nat.hosts) + 1}"
        self._ip(nat.netns, "link", "add", port, "netns", nat.netns, "type", "veth",
                 "peer", "name", "eth0", "netns", host.netns)
        self._ip(nat.netns, "link", "set", port, "master", "lan", "up")
        self._ip(host.netns, "addr", "add", f"{address}/{nat.lan.prefixlen}", "dev", "eth0")
        self._ip(host.netns, "link", "set", "eth0", "up")
        self._ip(host.netns, "route", "add", "default", "via", str(nat.lan[1]))
        nat.hosts.append(host)
        self.hosts[name] = host
        return host

    def host(self, host_or_name):
        return self.hosts[host_or_name] if isinstance(host_or_name, str) else host_or_name

    def loss(self, host, probability):
        """Drop each packet entering or leaving `host` with `probability` (0 removes
        the rule). Traffic on its loopback is spared; a router drops a forwarded
        packet at most once, as it enters."""
        host = self.host(host)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"loss probability must be within 0..1, not {probability}")
        threshold = round(probability * 1_000_000)
        # Creating the table first makes the delete succeed whether or not it existed.
        rules = "table inet kadchat_loss {}\ndelete table inet kadchat_loss\n"
        # numgen's values are 0..999999: a probability of 1 is a plain drop
        chance = "" if threshold >= 1_000_000 else f"numgen random mod 1000000 < {threshold} "
        if threshold:
            rules += (
                "table inet kadchat_loss {\n"
                "  chain inbound {\n"
                "    type filter hook prerouting priority raw; policy accept;\n"
                f"    iifname != \"lo\" {chance}drop\n"
                "  }\n"
                "  chain outbound {\n"
                "    type filter hook output priority raw; policy accept;\n"
                f"    oifname != \"lo\" {chance}drop\n"
                "  }\n"
                "}\n"
            )
        self._nft(host.netns, rules)

    # -- processes -----------------------------------------------------------

    def run(self, host, argv, **popen_kwargs):
        """Start `argv` inside `host`'s namespace; returns a tracked `Process`.

        Defaults: stdin closed, stdout piped (read it with the Process methods),
        stderr to a log file (`Process.stderr_text()`), own process group."""
        host = self.host(host)
        stderr_path = os.path.join(self.log_dir, f"{host.name}-{len(self.processes)}.stderr")
        options = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE, "start_new_session": True}
        options.update(popen_kwargs)
        with open(stderr_path, "wb") as stderr:
            options.setdefault("stderr", stderr)
            popen = subprocess.Popen(["ip", "netns", "exec", host.netns, *argv], **options)
        process = Process(host, list(argv), popen, stderr_path)
        self.processes.append(process)
        return process

    def call(self, host, argv, timeout=_COMMAND_TIMEOUT, check=True):
        """Run a short command in `host`'s namespace; returns its CompletedProcess."""
        return self._exec(self.host(host).netns, argv, timeout=timeout, check=check)

    def udp_agent(self, host, port=0, echo=False, timeout=10.0):
        """Start a `UdpAgent` on `host`, bound to 0.0.0.0:`port`."""
        argv = [sys.executable, UDP_AGENT, str(port)]
        if echo:
            argv.append("--echo")
        host = self.host(host)
        process = self.run(host, argv, stdin=subprocess.PIPE)
        bound = process.read_json(timeout, lambda obj: "bound" in obj)["bound"]
        return UdpAgent(process, (host.address, bound[1]))

    # -- plumbing ------------------------------------------------------------

    def _new_namespace(self, name):
        if self._closed:
            raise NetnsError("this lab is closed")
        if not _HOST_NAME.match(name) or name == "switch" and self._switch is not None:
            raise ValueError(f"bad or reserved host name {name!r}")
        if name in self.hosts:
            raise ValueError(f"host {name!r} exists already")
        netns = self.prefix + name
        _command(["ip", "netns", "add", netns])
        self._namespaces.append(netns)
        self._ip(netns, "link", "set", "lo", "up")
        return netns

    def _next_public_address(self):
        return str(PUBLIC_NETWORK[next(self._public_hosts)])

    def _plug_into_switch(self, netns, interface, address):
        port = f"p{next(self._switch_ports)}"
        self._ip(netns, "link", "add", interface, "netns", netns, "type", "veth",
                 "peer", "name", port, "netns", self._switch)
        self._ip(self._switch, "link", "set", port, "master", "br0", "up")
        self._ip(netns, "addr", "add", f"{address}/{PUBLIC_NETWORK.prefixlen}", "dev", interface)
        self._ip(netns, "link", "set", interface, "up")

    @staticmethod
    def _nat_rules(mode):
        return (
            "table ip kadchat_nat {\n"
            "  chain postrouting {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n"
            f"    oifname \"wan\" {NAT_MODES[mode]}\n"
            "  }\n"
            "  chain input {\n"
            "    type filter hook input priority filter; policy accept;\n"
            "    iifname \"wan\" ct state new drop\n"
            "  }\n"
            "  chain forward {\n"
            "    type filter hook forward priority filter; policy accept;\n"
            "    iifname \"wan\" ct state new drop\n"
            "  }\n"
            "}\n"
        )

    @staticmethod
    def _ip(netns, *args):
        _command(["ip", "-n", netns, *args])

    @staticmethod
    def _exec(netns, argv, timeout=_COMMAND_TIMEOUT, check=True):
        return _command(["ip", "netns", "exec", netns, *argv], timeout=timeout, check=check)

    @staticmethod
    def _nft(netns, rules):
        _command(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=rules)


# -- pytest glue ---------------------------------------------------------------

_unavailable = []  # memo: [reason or None]


def netns_unavailable_reason():
    """Why this machine cannot run lab tests, or None if it can."""
    if not _unavailable:
        _unavailable.append(_probe())
    return _unavailable[0]


def _probe():
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (apt-get install iproute2 nftables)"
    if os.geteuid() != 0:
        return "network namespaces need root"
    netns = f"{NAME_PREFIX}{os.getpid()}x0-probe"
    try:
        _command(["ip", "netns", "add", netns])
        _command(["ip", "netns", "exec", netns, "nft", "list", "tables"])
    except (NetnsError, OSError, subprocess.TimeoutExpired) as e:
        return f"cannot create a network namespace with nftables: {e}"
    finally:
        _delete_namespace(netns)
    return None


def require_netns():
    """Skip the test when namespaces are unavailable; on CI (env CI set), fail instead."""
    reason = netns_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"netns tests cannot run on CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def lab(request):
    """A started `Lab`, closed after the test whatever happens."""
    require_netns()
    new_lab = Lab()
    request.addfinalizer(new_lab.close)
    return new_lab.start()
