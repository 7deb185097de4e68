"""A console client (client_node.py -N) on a pseudo-terminal, seen as a person sees it.

The child's terminal output goes through pyte, a VT100 emulator, so a test
reads the screen (and the lines scrolled off it) rather than the escape
sequences prompt_toolkit draws with; pyte also answers the cursor position
requests a real terminal would. Keys are bytes written to the terminal, as a
keyboard would send them (`KEYS`).
"""

import fcntl
import os
import pty
import signal
import struct
import subprocess
import termios
import threading
import time

import pyte

from tests.child_process import signal_group
from tests.client_helpers import CHILD_ENV, ROOT

KEYS = {"left": b"\x1b[D", "right": b"\x1b[C", "up": b"\x1b[A", "down": b"\x1b[B",
        "home": b"\x1b[H", "end": b"\x1b[F", "backspace": b"\x7f", "enter": b"\r", "tab": b"\t",
        "ctrl-c": b"\x03", "ctrl-d": b"\x04"}


class _AnsweringScreen(pyte.HistoryScreen):
    """A screen that keeps scrolled-off lines and answers the terminal's queries."""

    def __init__(self, columns, rows, answer):
        super().__init__(columns, rows, history=5000)
        self._answer = answer

    def write_process_input(self, data):
        self._answer(data.encode())


class ScreenClient:
    """`argv` on a pseudo-terminal of `columns` x `rows`; stderr collected apart, or
    with `stderr_too` on the terminal as well."""

    def __init__(self, argv, columns=160, rows=30, env=None, stderr_too=False):
        self.argv = argv
        controller, terminal = pty.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self._controller = controller
        self._lock = threading.Lock()
        self.screen = _AnsweringScreen(columns, rows, self._write)
        self._stream = pyte.ByteStream(self.screen)
        self.popen = subprocess.Popen(argv, stdin=terminal, stdout=terminal, cwd=ROOT,
                                      stderr=terminal if stderr_too else subprocess.PIPE,
                                      env=dict(CHILD_ENV, TERM="xterm", **(env or {})), start_new_session=True)
        os.close(terminal)
        self.stderr_lines = []
        threading.Thread(target=self._pump, daemon=True).start()
        if not stderr_too:
            threading.Thread(target=self._pump_stderr, daemon=True).start()

    def _pump(self):
        while True:
            try:
                chunk = os.read(self._controller, 65536)
            except OSError:  # EIO once the child side is closed
                break
            if not chunk:
                break
            with self._lock:
                self._stream.feed(chunk)

    def _pump_stderr(self):
        for raw in self.popen.stderr:
            self.stderr_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def _write(self, data):
        os.write(self._controller, data)

    # Typing.

    def type(self, text):
        self._write(text.encode())

    def press(self, *keys):
        for key in keys:
            self._write(KEYS[key])

    def enter(self, text=""):
        self.type(text)
        self.press("enter")

    # Reading.

    def lines(self):
        """Every line shown so far: those scrolled off the top, then the screen, trailing blanks cut."""
        with self._lock:
            scrolled = [self._text(line) for line in self.screen.history.top]
            shown = [line.rstrip() for line in self.screen.display]
        while shown and not shown[-1]:
            shown.pop()
        return scrolled + shown

    def _text(self, line):
        return "".join(line[x].data for x in range(self.screen.columns)).rstrip()

    def terminal_modes(self):
        """The terminal's termios attributes (a raw line editor clears ICANON and ECHO)."""
        return termios.tcgetattr(self._controller)

    def cursor_line(self):
        """The screen line the cursor is on: the one being typed."""
        with self._lock:
            return self.screen.display[self.screen.cursor.y].rstrip()

    def wait_for(self, test, timeout=20.0, what="the screen to change"):
        """Wait until `test()` is true; TimeoutError with the screen after `timeout` s."""
        deadline = time.monotonic() + timeout
        while not test():
            if time.monotonic() > deadline or self.popen.poll() is not None and not test():
                raise TimeoutError(f"no {what} within {timeout} s\n{self.describe()}")
            time.sleep(0.05)

    def wait_line(self, line, timeout=20.0):
        """Wait until a line equal to `line` is shown (or, for a callable, one it accepts)."""
        test = line if callable(line) else line.__eq__
        self.wait_for(lambda: any(test(shown) for shown in self.lines()), timeout, f"line {line!r}")

    def describe(self):
        return (f"{' '.join(self.argv)} (exit {self.popen.poll()})\n  screen:\n"
                + "\n".join(f"    |{line}" for line in self.lines()[-30:])
                + f"\n  stderr tail: {self.stderr_lines[-10:]}")

    # Ending.

    def wait(self, timeout=15.0):
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"still running after {timeout} s\n{self.describe()}") from None

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after `timeout` s; safe on a process that has exited."""
        if self.popen.poll() is None:
            signal_group(self.popen, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                signal_group(self.popen, signal.SIGKILL)
                self.popen.wait(timeout)
        try:
            os.close(self._controller)
        except OSError:
            pass
