"""The console at a terminal: prompt_toolkit's line editor, output above the line being typed.

prompt_toolkit runs its own asyncio loop on a thread of its own, so Twisted's
reactor (and everything the network does) stays as it is in every other mode.
The two threads meet in three places only: typed lines go to the reactor with
`callFromThread`; output lines go to prompt_toolkit's StdoutProxy, which prints
them above the prompt and redraws the line being typed; and `close()` ends the
prompt from the reactor thread, which gives the terminal back as it was.

Whatever else writes to stderr meanwhile (log warnings), if stderr is the
terminal too, is passed through the same proxy, so it never splices into the
typed line either.

Without a terminal (stdin or stdout not a tty: a script pipes lines in), or
at a dumb one (TERM=dumb: it edits lines itself, e.g. Emacs's shell), the
console reads lines with Twisted's StandardIO and writes the lines scripts read.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import signal
import sys
import threading
from typing import Callable

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.patch_stdout import StdoutProxy
from prompt_toolkit.utils import is_dumb_terminal
from twisted.logger import Logger
from twisted.python.failure import Failure

from kadchat.ui.console import COMMANDS, ConsoleProtocol, ConsoleUI
from kadchat.ui.console_names import completions

CLOSE_WAIT = 2.0  # seconds close() waits for the prompt thread to give the terminal back
log = Logger()


def start_console(reactor, backend, quit: Callable[[], None]) -> None:
    """The console on stdin/stdout: the line editor at a terminal, lines otherwise."""
    if sys.stdin.isatty() and sys.stdout.isatty() and not is_dumb_terminal():
        _start_at_terminal(reactor, backend, quit)
    else:
        _start_on_pipes(reactor, backend, quit)


def _start_on_pipes(reactor, backend, quit):
    from twisted.internet.stdio import StandardIO

    holder = {}

    def write(line):
        holder["io"].write(line.encode("utf-8") + b"\n")

    ui = ConsoleUI(backend, write, quit, reactor)
    holder["io"] = StandardIO(ConsoleProtocol(ui), reactor=reactor)
    ui.start()


def _start_at_terminal(reactor, backend, quit):
    terminal = LineEditor(reactor, commands=COMMANDS)

    def leave():
        terminal.write("* leaving: telling your contacts...")
        terminal.close()
        quit()

    def lost(failure):
        log.failure("the line editor stopped; leaving", failure)
        leave()

    ui = ConsoleUI(backend, terminal.write, leave, reactor, interactive=True,
                   show_prompt=terminal.set_prompt, show_names=terminal.set_names)
    reactor.addSystemEventTrigger("before", "shutdown", terminal.close)  # Ctrl-C from outside, SIGTERM
    # Only the main thread hears signals: a resized window is passed on to the editor's thread.
    signal.signal(signal.SIGWINCH, lambda signum, frame: terminal.redraw())
    terminal.start(ui.line_received, ui.input_ended, lost)
    ui.start()


class LineEditor:
    """A prompt_toolkit prompt on its own thread, for a reactor that wants lines;
    Tab completes `commands` and the names set_names gave."""

    def __init__(self, reactor, commands=()):
        self._reactor = reactor
        self._completer = _NameCompleter(commands)
        self._prompt = "> "
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: PromptSession | None = None
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._output: StdoutProxy | None = None
        self._stderr: _StderrPump | None = None

    def start(self, line_received: Callable[[str], None], input_ended: Callable[[], None],
              lost: Callable[[Failure], None]) -> None:
        """`line_received(line)` per Enter, `input_ended()` per Ctrl-D (on an empty line) or Ctrl-C,
        `lost(failure)` if the editor stopped for another reason (the terminal went away); all
        called in the reactor thread."""
        self._output = StdoutProxy()
        self._stderr = _StderrPump(self._output) if os.isatty(2) else None  # not when it goes to a file
        self._thread = threading.Thread(target=asyncio.run, args=(self._read(line_received, input_ended, lost),),
                                        name="console-line-editor", daemon=True)
        self._thread.start()
        self._started.wait(CLOSE_WAIT)

    def write(self, line: str) -> None:
        """Print `line` above the line being typed (from the reactor thread)."""
        if self._output is None or self._output.closed:  # before start, after close
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        else:
            self._output.write(line + "\n")

    def set_names(self, contacts: list[str], requests: list[str]) -> None:
        self._completer.names = (list(contacts), list(requests))  # one reference, swapped whole

    def set_prompt(self, text: str) -> None:
        self._prompt = text
        self.redraw()

    def redraw(self) -> None:
        """Draw the prompt again (at the terminal's size now)."""
        self._call_in_prompt_thread(self._redraw)

    def close(self) -> None:
        """End the prompt and give the terminal back; every line written before still shows."""
        if self._closing or self._thread is None:
            return
        self._closing = True
        if self._stderr is not None:
            self._stderr.close()
        self._output.close()  # every line is in the prompt thread's hands now
        self._call_in_prompt_thread(lambda: asyncio.ensure_future(self._exit_after_output()))
        self._thread.join(CLOSE_WAIT)

    # In the prompt thread.

    async def _read(self, line_received, input_ended, lost):
        self._loop = asyncio.get_running_loop()
        self._session = PromptSession(history=InMemoryHistory(), completer=self._completer,
                                      complete_while_typing=False)
        self._started.set()
        while not self._closing:
            try:
                line = await self._session.prompt_async(lambda: self._prompt)
            except (EOFError, KeyboardInterrupt):  # Ctrl-D, Ctrl-C: the console decides
                self._reactor.callFromThread(input_ended)
                continue
            except Exception:
                self._reactor.callFromThread(lost, Failure())
                return
            if line is not None and not self._closing:
                self._reactor.callFromThread(line_received, line)

    def _call_in_prompt_thread(self, call):
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(call)
            except RuntimeError:  # the loop closed just now
                pass

    def _redraw(self):
        if self._session.app.is_running:
            self._session.app.invalidate()

    async def _exit_after_output(self):
        await run_in_terminal(lambda: None, in_executor=False)  # runs after the lines handed over before
        self._exit_prompt()

    def _exit_prompt(self):
        app = self._session.app
        if app.is_running:
            app.erase_when_done = True  # no empty prompt left behind
            if not app.future.done():
                app.exit(result=None)
        else:  # between two prompts (the loop in _read sees _closing) or starting one: look again
            self._loop.call_later(0.05, self._exit_prompt)


class _NameCompleter(Completer):
    """Tab: the command being typed, then the contact (or requester) a command takes."""

    def __init__(self, commands):
        self._commands = tuple(commands)
        self.names: tuple[list[str], list[str]] = ([], [])  # (contacts, requests), set from the reactor thread

    def get_completions(self, document, complete_event):
        line = document.text_before_cursor
        command, space, name = line.partition(" ")
        typed, after = (name, "") if space else (command, " ")
        for word in completions(line, self._commands, *self.names):
            yield Completion(word + after, start_position=-len(typed))


class _StderrPump:
    """While the editor runs, file descriptor 2 is a pipe whose lines go to `output`."""

    def __init__(self, output):
        sys.stderr.flush()
        self._saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._thread = threading.Thread(target=self._pump, args=(read_end, output),
                                        name="console-stderr", daemon=True)
        self._thread.start()

    @staticmethod
    def _pump(read_end, output):
        text = codecs.getincrementaldecoder("utf-8")("replace")  # a character may span two reads
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                output.write(text.decode(chunk))
            output.write(text.decode(b"", final=True))
            output.flush()

    def close(self):
        sys.stderr.flush()
        os.dup2(self._saved, 2)  # the pipe's last writer goes: the pump reads its end
        os.close(self._saved)
        self._thread.join(CLOSE_WAIT)
