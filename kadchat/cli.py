"""What both entry scripts share: logging setup, argument parsing, one-line user errors."""

import argparse
import sys

from twisted.internet import defer
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
    textFileLogObserver,
)

from kadchat.errors import UserError


def start_logging(path=None, level=LogLevel.info, terse=False):
    """Log to `path` (appending) or to stderr, at `level` and above.

    `terse` (stderr only): each event as one line `warning: TEXT` (or `error:`),
    without timestamp, namespace or traceback, for a person at a terminal.
    """
    try:
        stream = open(path, "a", buffering=1) if path else sys.stderr
    except OSError as e:
        raise UserError(f"cannot open log file {path}: {e.strerror}") from None
    predicate = LogLevelFilterPredicate(defaultLogLevel=level)
    sink = one_line_observer(stream) if terse and not path else textFileLogObserver(stream)
    observer = FilteringLogObserver(sink, [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def one_line_observer(stream):
    """A log observer writing each event as one line, `warning:`/`error:` first."""
    prefixes = {LogLevel.warn: "warning: ", LogLevel.error: "error: ", LogLevel.critical: "error: "}

    def observe(event):
        text = (formatEvent(event) or "").replace("\n", " ")
        failure = event.get("log_failure")
        if failure is not None:
            text += f": {failure.getErrorMessage()}"
        stream.write(f"{prefixes.get(event.get('log_level'), '')}{text}\n")
        stream.flush()
    return observe


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
