"""What both entry scripts share: logging setup, argument parsing, one-line user errors."""

import argparse
import sys

from twisted.internet import defer
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)

from kadchat.errors import UserError


def start_logging(path=None, level=LogLevel.info):
    """Log to `path` (appending) or to stderr, at `level` and above."""
    try:
        stream = open(path, "a", buffering=1) if path else sys.stderr
    except OSError as e:
        raise UserError(f"cannot open log file {path}: {e.strerror}") from None
    predicate = LogLevelFilterPredicate(defaultLogLevel=level)
    observer = FilteringLogObserver(textFileLogObserver(stream), [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def run_main(reactor, main, argv):
    """Run `main(reactor, argv)`; a UserError becomes `error: ...` and exit code 1."""
    d = defer.maybeDeferred(main, reactor, argv)

    def user_error(failure):
        failure.trap(UserError)
        print(f"error: {failure.value}", file=sys.stderr)
        raise SystemExit(1)

    return d.addErrback(user_error)


def parse_address(text):
    """`host:port` -> (host, port), or UserError."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"bad address {text!r}: expected HOST:PORT")
    return host, int(port)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line `error: ...` (and exit status 2)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


def flag_type(value_parser):
    """An argparse `type` from a value parser that raises ValueError with a message for the user."""
    def parse(text):
        try:
            return value_parser(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse
