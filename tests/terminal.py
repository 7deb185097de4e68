"""A child process on a real pseudo-terminal that is its controlling terminal,
in cooked mode as for a person: Ctrl-C typed there is SIGINT to the child's
process group, Ctrl-D ends its input, and the child echoes what is typed."""

import os
import pty
import re
import select
import signal
import time

CTRL_C, CTRL_D = b"\x03", b"\x04"


class Terminal:
    def __init__(self, argv, env=None, cwd=None):
        self.argv = argv
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: a new session whose controlling terminal is the pty
            try:
                if cwd:
                    os.chdir(cwd)
                os.execve(argv[0], argv, env or os.environ)
            finally:
                os._exit(127)
        self.screen = ""
        self.status = None

    def type(self, data: bytes):
        os.write(self.fd, data)

    def _read(self, timeout):
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the child side is closed
            chunk = b""
        if not chunk:
            return None
        self.screen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        return True

    def expect(self, pattern, timeout=30.0):
        """The first match of `pattern` (multiline regex) on the screen so far, waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.screen, re.MULTILINE)
            if found:
                return found
            if time.monotonic() > deadline or self._read(min(0.2, max(0.0, deadline - time.monotonic()))) is None:
                raise AssertionError(f"{pattern!r} not on the screen of {self.argv[1:]}:\n{self.screen}")

    def wait(self, timeout=30.0):
        """The exit code, reading the screen until the child exits."""
        deadline = time.monotonic() + timeout
        while self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.argv[1:]} still running after {timeout} s:\n{self.screen}")
            self._read(0.1)
        while self._read(0.1):  # what it wrote last
            pass
        return self.status

    def close(self):
        if self.status is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait(10)
        os.close(self.fd)
