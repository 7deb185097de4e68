"""A console on the UI test double (tests.backend_double), as a process of its own.

For pseudo-terminal tests of what the console does with backend events that a
real service cannot be made to produce on cue: it starts with contact `bob` and
a contact request from `dave`, each SIGUSR1 brings the next request of
LATER_REQUESTS, as if it had just arrived from the network, and each SIGUSR2
writes WARNING to stderr, as a log warning would.
"""

import signal
import sys

from twisted.internet import defer, task

from kadchat.ui.console_terminal import start_console
from tests.backend_double import BackendDouble

LATER_REQUESTS = [("Eve Ng", "hello from the train"), ("mallory", "")]
WARNING = "warning: something the log says"


def main(reactor):
    backend = BackendDouble(now=reactor.seconds)
    backend.add("bob")
    backend.request("dave", note="we met at the conference")
    later = iter(LATER_REQUESTS)

    def next_request():
        name, note = next(later)
        backend.request(name, note=note)

    def warn():
        print(WARNING, file=sys.stderr, flush=True)

    signal.signal(signal.SIGUSR1, lambda signum, frame: reactor.callFromThread(next_request))
    signal.signal(signal.SIGUSR2, lambda signum, frame: reactor.callFromThread(warn))
    finished = defer.Deferred()
    start_console(reactor, backend, lambda: finished.called or finished.callback(None))
    return finished


if __name__ == "__main__":
    task.react(main)
