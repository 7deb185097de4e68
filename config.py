"""kadchat settings: defaults, then the config file, then command-line flags.

The config file is ``kadchat.conf`` in the data directory (or ``--config
PATH``). It is UTF-8 text with one ``key = value`` setting per line; lines
starting with ``#`` are comments and blank lines are ignored. Keys are the
field names of `Config` below, except ``data_dir``. Booleans are
``true``/``false`` (also ``yes``/``no``, ``on``/``off``, ``1``/``0``); an empty
value leaves an optional setting unset. For example::

    # kadchat.conf
    port = 7000
    bootstrap_host = 127.0.0.1
    bootstrap_port = 6881
    no_gui = true
    name = alice

An unknown key, a repeated key or a bad value stops the program with a
``file:line:`` message. Flags given on the command line win over the file.
"""

import ipaddress
import os
import re
from dataclasses import dataclass, field, fields, replace

from kadchat import datadir
from kadchat.cli import OneLineParser, flag_type
from kadchat.errors import UserError
from kadchat.files import parse_host, validate_name
from kadchat.identity import CARD_FILE
from kadchat.network_mode import NETWORKS

CONFIG_FILE = "kadchat.conf"


@dataclass(frozen=True)
class Config:
    # identity, contacts, bootstrap list, history and state live here (see kadchat.datadir.default)
    data_dir: str = field(default_factory=lambda: datadir.default(CARD_FILE))
    port: int = 0  # UDP port for DHT and chat; 0 lets the system pick a free one
    interface: str = "0.0.0.0"  # address to bind; all interfaces so peers can reach us
    bootstrap_host: str | None = None  # a node to join through, besides bootstrap.txt
    bootstrap_port: int | None = None
    log_file: str | None = None  # None: log to the console (headless) or nowhere (GUI)
    no_gui: bool = False  # -N: console client instead of the Tk window
    refresh: bool = False  # -r: look up contacts' presence periodically
    refresh_interval: float = 10.0  # seconds between presence look-ups with -r
    name: str | None = None  # username to use when creating the identity
    k: int = 8  # DHT bucket size and replication factor
    alpha: int = 3  # DHT parallel queries per lookup
    epoch_seconds: int | None = None  # presence records move to a new DHT key every epoch; None: 300 s, 3600 s on mainline
    record_ttl: int = 600  # how long a presence record is stored and believed
    publish_interval: float = 120.0  # re-publish our presence this often while online
    clock_skew: float = 120.0  # tolerated clock difference between contacts
    keepalive_interval: float = 15.0  # a live session's keep-alives (they also keep NAT mappings open)
    gone_after: float = 45.0  # a contact silent this long is shown offline (3 missed keep-alives)
    network: str = "auto"  # mainline (the public BitTorrent DHT), private (our own swarm), auto: mainline without bootstrap nodes
    introducer: bool = False  # announce ourselves as introducer/relay on mainline while publicly reachable
    downloads: str | None = None  # where received files go; None: $XDG_DOWNLOAD_DIR/kadchat or ~/Downloads/kadchat
    relay_files: bool = False  # let files over 10 MB travel through a relay (only if the other end agrees too)


# -- value parsers: each raises ValueError with a message for the user ----------

def _int(text, low, high=None):
    if not re.fullmatch(r"-?\d+", text.strip()):
        raise ValueError(f"expected a whole number, not {text!r}")
    value = int(text)
    if value < low or (high is not None and value > high):
        raise ValueError(f"{value} is out of range ({low}-{high})" if high else f"must be at least {low}")
    return value


def _float(text, low, exclusive):
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number, not {text!r}") from None
    if value != value or value == float("inf") or value < low or (exclusive and value == low):
        raise ValueError(f"must be {'more than' if exclusive else 'at least'} {low:g}")
    return value


def _bool(text):
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, not {text!r}")


def _path(text):
    if not text.strip():
        raise ValueError("empty path")
    return text.strip()


def _user_checked(check):
    """A value parser from one of kadchat.files' checks, which raise UserError."""
    def parse(text):
        try:
            return check(text)
        except UserError as e:
            raise ValueError(str(e)) from None
    return parse


def _network(text):
    if text.strip() not in NETWORKS:
        raise ValueError(f"expected one of {', '.join(NETWORKS)}, not {text.strip()!r}")
    return text.strip()


def _ipv4(text):
    """The address to bind: kadchat speaks IPv4 (BEP 5 compact addresses)."""
    try:
        return str(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        raise ValueError(f"not an IPv4 address: {text.strip()!r}") from None


PARSERS = {
    "port": lambda t: _int(t, 0, 65535),
    "interface": _ipv4,
    "bootstrap_host": _user_checked(parse_host),
    "bootstrap_port": lambda t: _int(t, 1, 65535),
    "log_file": _path,
    "no_gui": _bool,
    "refresh": _bool,
    "refresh_interval": lambda t: _float(t, 0, exclusive=True),
    "name": _user_checked(validate_name),
    "k": lambda t: _int(t, 1),
    "alpha": lambda t: _int(t, 1),
    "epoch_seconds": lambda t: _int(t, 1),
    "record_ttl": lambda t: _int(t, 1),
    "publish_interval": lambda t: _float(t, 0, exclusive=True),
    "clock_skew": lambda t: _float(t, 0, exclusive=False),
    "keepalive_interval": lambda t: _float(t, 0, exclusive=True),
    "gone_after": lambda t: _float(t, 0, exclusive=True),
    "network": _network,
    "introducer": _bool,
    "downloads": lambda t: os.path.expanduser(_path(t)),
    "relay_files": _bool,
}
_OPTIONAL = {f.name for f in fields(Config) if f.default is None}
# Every setting but data_dir (which locates the file) can be set in the file.
assert set(PARSERS) == {f.name for f in fields(Config)} - {"data_dir"}


def read_config_file(path, required=False) -> dict:
    """The settings in a config file as {field name: value}; {} if it is missing and not required."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        if required:
            raise UserError(f"config file {path} does not exist") from None
        return {}
    except OSError as e:
        raise UserError(f"cannot read config file {path}: {e.strerror}") from None
    settings, first_seen = {}, {}
    for number, line in enumerate(raw.split(b"\n"), start=1):
        where = f"{path}:{number}"
        try:
            line = line.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise UserError(f"{where}: not UTF-8 text") from None
        if not line or line.startswith("#"):
            continue
        key, equals, text = line.partition("=")
        key, text = key.strip(), text.strip()
        if not equals:
            raise UserError(f"{where}: expected 'key = value'")
        if key not in PARSERS:
            raise UserError(f"{where}: unknown setting {key!r}")
        if key in first_seen:
            raise UserError(f"{where}: {key} is already set on line {first_seen[key]}")
        first_seen[key] = number
        if not text and key in _OPTIONAL:
            settings[key] = None
            continue
        try:
            settings[key] = PARSERS[key](text)
        except ValueError as e:
            raise UserError(f"{where}: {key}: {e}") from None
    return settings


def check_config(config: Config, source: str) -> Config:
    """UserError for settings that contradict each other; `source` says where they came from."""
    if (config.bootstrap_host is None) != (config.bootstrap_port is None):
        raise UserError(f"{source}: bootstrap_host and bootstrap_port go together: set both or neither")
    if config.publish_interval >= config.record_ttl:
        raise UserError(f"{source}: publish_interval must be shorter than record_ttl")
    if config.gone_after <= config.keepalive_interval:
        raise UserError(f"{source}: gone_after must be longer than keepalive_interval")
    return config


# -- command line --------------------------------------------------------------

# (flag, setting, metavar, help); settings that are switches have no metavar.
_CLIENT_FLAGS = [
    ("-p", "port", "PORT", "UDP port to listen on (default: any free port)"),
    ("-I", "bootstrap_host", "HOST", "bootstrap node host (with -P)"),
    ("-P", "bootstrap_port", "PORT", "bootstrap node port (with -I)"),
    ("-l", "log_file", "LOGFILE", "write the log to this file"),
    ("-N", "no_gui", None, "no GUI: console chat client"),
    ("-r", "refresh", None, "look up contacts' presence every refresh_interval seconds (default 10)"),
    ("--name", "name", "NAME", "your username, when creating your identity"),
    ("--interface", "interface", "ADDRESS", "IPv4 address to bind (default: all interfaces)"),
    ("--introducer", "introducer", None, "on mainline, offer to be an introducer and relay while publicly reachable"),
]


def _client_parser(prog):
    parser = OneLineParser(
        prog=prog,
        description="kadchat: private, serverless chat over a Kademlia DHT.",
        epilog=(
            f"The data directory holds identity.key, identity.txt, contacts.txt, bootstrap.txt "
            f"and {CONFIG_FILE} (settings as 'key = value' lines). Flags override the config file."
        ),
    )
    for flag, key, metavar, help_text in _CLIENT_FLAGS:
        if metavar is None:
            parser.add_argument(flag, dest=key, action="store_const", const=True, default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=key, metavar=metavar, type=flag_type(PARSERS[key]), default=None, help=help_text)
    parser.add_argument("--mainline", dest="network", action="store_const", const="mainline", default=None,
                        help="ride the public BitTorrent DHT (the default without bootstrap nodes)")
    parser.add_argument("--config", metavar="PATH", help=f"config file (default: DIR/{CONFIG_FILE})")
    parser.add_argument("--data-dir", dest="data_dir", metavar="DIR", type=flag_type(_path),
                        help=f"data directory (default: the current directory if it holds {CARD_FILE}, "
                             f"else $XDG_DATA_HOME/{datadir.APP_FOLDER}, i.e. ~/.local/share/{datadir.APP_FOLDER})")
    return parser


def build_config(argv, prog) -> Config:
    """The Config for command-line arguments `argv` (without the program name).

    Bad flags exit with status 2 and a one-line ``error:`` message; a bad
    config file raises UserError.
    """
    parser = _client_parser(prog)
    args = parser.parse_args(list(argv))
    if (args.bootstrap_host is None) != (args.bootstrap_port is None):
        parser.error("-I and -P go together: give both or neither")
    data_dir = args.data_dir or datadir.default(CARD_FILE)
    config_path = args.config or os.path.join(data_dir, CONFIG_FILE)
    config = replace(Config(data_dir=data_dir), **read_config_file(config_path, required=args.config is not None))
    flags = {key: value for key, value in vars(args).items() if key in PARSERS and value is not None}
    return check_config(replace(config, **flags), config_path)


def parse_client_args(argv) -> Config:
    """The Config for client_node.py's arguments (without the program name)."""
    return build_config(argv, "client_node.py")
