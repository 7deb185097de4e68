"""A child process whose output lines are read on a thread, with bounded waits.

The one line reader behind `tests.client_helpers.Spawned` (clients and
servers on this host, through pipes or a pseudo-terminal) and
`tests.netns.Process` (processes inside a lab's namespaces).
"""

import os
import queue
import re
import signal
import subprocess
import threading
import time


def signal_group(popen, signum):
    """Signal a child started in its own process group, and everything it started."""
    try:
        os.killpg(popen.pid, signum)
    except ProcessLookupError:
        pass


class ChildProcess:
    """`popen`, started with start_new_session=True; its lines are read from
    `output` (a pipe, or a pty's controller side; None: not read) and
    `send_line` writes to `input`. Subclasses say what `describe()` shows when
    a wait fails."""

    def __init__(self, popen, output, input=None):
        self.popen = popen
        self.lines = []  # every line read so far, consumed or not
        self._unread = queue.Queue()
        self._output, self._input = output, input
        if output is not None:
            threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        buffer = b""
        while True:
            try:
                chunk = self._output.read1(65536) if hasattr(self._output, "read1") else self._output.read(65536)
            except OSError:  # a pty reads EIO once the child side is closed
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                self._add(raw)
        if buffer:
            self._add(buffer)
        self._output.close()
        self._unread.put(None)

    def _add(self, raw):
        line = raw.decode("utf-8", "replace").rstrip("\r")
        self.lines.append(line)
        self._unread.put(line)

    @property
    def pid(self):
        return self.popen.pid

    @property
    def returncode(self):
        return self.popen.poll()

    def alive(self):
        return self.popen.poll() is None

    def read_line(self, timeout):
        """The next unread line; None at end of output; TimeoutError after `timeout` s."""
        try:
            line = self._unread.get(timeout=max(0.0, timeout))
        except queue.Empty:
            raise TimeoutError(f"no output line within {timeout:.1f} s\n{self.describe()}") from None
        if line is None:
            self._unread.put(None)  # stay at end of output for later reads
        return line

    def expect(self, pattern, timeout=10.0):
        """Read lines until one matches the regex `pattern`; returns the match."""
        return self.read_until(lambda line: re.search(pattern, line), timeout, repr(pattern))

    def read_until(self, test, timeout, wanted):
        """Read lines until `test(line)` is true; returns that value. `wanted` names it in errors."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.read_line(deadline - time.monotonic())
            if line is None:
                raise EOFError(f"output ended without {wanted}\n{self.describe()}")
            result = test(line)
            if result:
                return result

    def seen(self, pattern):
        """Every line so far (consumed or not) matching the regex."""
        return [line for line in list(self.lines) if re.search(pattern, line)]

    def send_line(self, text):
        self._input.write(text.encode("utf-8") + b"\n")
        self._input.flush()

    def kill(self):
        """SIGKILL to its process group: no goodbye, no flush."""
        signal_group(self.popen, signal.SIGKILL)
        self.popen.wait(5)

    def stop(self, timeout=5.0):
        """SIGTERM its process group, then SIGKILL after `timeout` s; returns the exit code.
        Safe on a process that has exited."""
        if self.alive():
            signal_group(self.popen, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._input is not None:
            try:
                self._input.close()
            except OSError:  # a pipe whose reader is gone
                pass
        return self.popen.returncode

    def describe(self):
        raise NotImplementedError
