"""tests.child_process on small real children: what both process helpers rely on."""

import subprocess
import sys

import pytest

from tests.child_process import ChildProcess


class Child(ChildProcess):
    def __init__(self, code):
        popen = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 start_new_session=True)
        super().__init__(popen, popen.stdout, popen.stdin)

    def describe(self):
        return f"child {self.pid}: {self.lines}"


@pytest.fixture
def child(request):
    started = []

    def start(code):
        started.append(Child(code))
        return started[-1]

    yield start
    for process in started:
        process.stop()


def test_lines_come_in_order_with_crlf_trimmed_and_a_last_unterminated_line_kept(child):
    echo = child("import sys; sys.stdout.write('one\\r\\ntwo\\nthree')")
    assert [echo.read_line(5) for _ in range(4)] == ["one", "two", "three", None]
    assert echo.read_line(5) is None  # stays at the end
    assert echo.seen("^t") == ["two", "three"]


def test_expect_skips_to_the_match_and_fails_at_the_end_of_output(child):
    echo = child("print('a 1'); print('b 2'); print('c 3')")
    assert echo.expect(r"^b (\d)$")[1] == "2"
    with pytest.raises(EOFError, match="output ended without 'z'"):
        echo.expect("z")
    assert echo.seen(".") == ["a 1", "b 2", "c 3"]


def test_a_silent_child_times_out_with_its_description(child):
    quiet = child("import time; time.sleep(30)")
    with pytest.raises(TimeoutError, match="no output line within 0.2 s\nchild"):
        quiet.read_line(0.2)


def test_lines_sent_reach_the_child(child):
    cat = child("import sys\nfor line in sys.stdin: print(line.strip().upper(), flush=True)")
    cat.send_line("hello")
    assert cat.expect("^HELLO$")


def test_stop_ends_a_child_that_ignores_sigterm(child):
    stubborn = child("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
                     "time.sleep(30)")
    stubborn.expect("^ready$")
    assert stubborn.stop(timeout=0.5) == -9
    assert not stubborn.alive() and stubborn.stop() == -9
