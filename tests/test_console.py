"""The headless console: commands in, one line per event out."""

import time

import pytest
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from kadchat.ui.console import COMMANDS, ConsoleProtocol, ConsoleUI
from kadchat.ui.console_names import completions
from kadchat.errors import UserError
from kadchat.model import Status
from tests.backend_double import BackendDouble

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


class Console:
    """A started ConsoleUI on a BackendDouble and a Clock, with its output."""

    def __init__(self, **options):
        self.clock = Clock()
        self.clock.advance(T0)
        self.backend = BackendDouble(now=self.clock.seconds)
        self.out = []
        self.quits = 0
        self.ui = ConsoleUI(self.backend, self.out.append, self._quit, self.clock, **options)
        self.ui.start()
        self.out.clear()

    def _quit(self):
        self.quits += 1

    def run(self, line):
        """Feed one line; return the lines it printed."""
        before = len(self.out)
        self.ui.line_received(line)
        return self.out[before:]


@pytest.fixture
def console():
    return Console()


def test_start_subscribes_and_greets_with_own_name():
    clock, backend, out = Clock(), BackendDouble(), []
    ui = ConsoleUI(backend, out.append, lambda: None, clock)
    assert backend.listeners == []  # nothing happens before start()
    ui.start()
    assert backend.listeners == [ui]
    assert out == ["kadchat: you are alice; /help lists commands"]


def test_incoming_message_is_one_line_with_local_time(console):
    console.backend.add("bob")
    console.backend.receive("bob", "hello there", timestamp=T0 + 5)
    assert console.out == ["[22:13:25] bob: hello there"]


def test_incoming_message_follows_the_local_time_zone(console, monkeypatch):
    monkeypatch.setenv("TZ", "IST-5:30")  # POSIX form: UTC+05:30, no tz database needed
    time.tzset()
    console.backend.add("bob")
    console.backend.receive("bob", "hi", timestamp=T0)
    assert console.out == ["[03:43:20] bob: hi"]


def test_line_breaks_in_a_message_stay_on_one_output_line(console):
    console.backend.add("bob")
    console.backend.receive("bob", "one\ntwo\r\nthree\rfour", timestamp=T0)
    assert console.out == ["[22:13:20] bob: one / two / three / four"]


def test_terminal_escapes_from_a_peer_are_neutralised(console):
    console.backend.add("bob")
    console.backend.receive("bob", "\x1b[2Jgotcha\x07\u202e", timestamp=T0)
    assert console.out == ["[22:13:20] bob: \ufffd[2Jgotcha\ufffd\ufffd"]


def test_printed_messages_are_marked_read(console):
    console.backend.add("bob")
    console.backend.receive("bob", "hi")
    assert console.backend.marked_read == ["bob"]
    assert console.backend.contacts()[0].unread == 0


def test_own_messages_announced_by_the_backend_are_not_printed_as_received(console):
    console.backend.add("bob")
    sent = console.backend.send_message("bob", "from the other UI")
    console.ui.message(sent)
    assert console.out == []


def test_each_presence_change_is_a_star_line_of_its_own(console):
    console.backend.add("bob")
    for presence in ("connected", "away", "seen", "offline"):
        console.backend.set_presence("bob", presence)
    assert console.out == [
        "* bob is connected", "* bob is away", "* bob is in the network", "* bob is offline"]


def test_msg_sends_the_rest_of_the_line_verbatim(console):
    console.backend.add("bob")
    assert console.run("/msg bob  hello,  world ") == ["(sending to bob)"]
    assert console.backend.sent == [("bob", " hello,  world")]


def test_delivery_states_of_own_messages_are_parenthesised_lines(console):
    console.backend.add("bob")
    console.run("/msg bob hi")
    message_id = console.backend.history("bob")[-1].id
    console.backend.set_state(message_id, "sent")
    console.backend.set_state(message_id, "delivered")
    assert console.out == ["(sending to bob)", "(sent to bob)", "(delivered to bob)"]


def test_states_of_messages_sent_elsewhere_are_not_printed(console):
    console.backend.add("bob")
    other = console.backend.past("bob", True, "old", T0 - 60, "sending")
    console.backend.set_state(other.id, "delivered")
    assert console.out == []


@pytest.mark.parametrize("line", ["/msg", "/msg bob", "/msg bob   "])
def test_msg_without_text_prints_usage(console, line):
    console.backend.add("bob")
    assert console.run(line) == ["error: usage: /msg NAME TEXT"]
    assert console.backend.sent == []


def test_msg_to_unknown_contact_prints_the_backend_error(console):
    assert console.run("/msg carol hi") == ["error: No contact named carol."]


def test_retry_resends_only_failed_messages_of_this_session(console):
    console.backend.add("bob")
    console.run("/msg bob one")
    console.run("/msg bob two")
    first, second = (m.id for m in console.backend.history("bob"))
    console.backend.set_state(first, "failed")
    console.backend.set_state(second, "delivered")
    assert console.run("/retry") == ["(sending to bob)"]
    assert console.backend.retried == [first]
    assert console.run("/retry") == ["nothing to retry"]


def test_add_accepts_a_card_and_a_name(console):
    assert console.run("/add card:b0b bob") == ["added bob"]
    assert [c.name for c in console.backend.contacts()] == ["bob"]


def test_add_takes_the_first_word_as_card_so_names_may_contain_spaces(console):
    assert console.run("/add card:b0b Bob  Smith") == ["added Bob  Smith"]
    assert console.run('/add "card:c4r01" "Carol Ann"') == ["added Carol Ann"]
    assert sorted(c.name for c in console.backend.contacts()) == ["Bob  Smith", "Carol Ann"]


def test_add_with_a_bad_card_prints_the_user_error(console):
    assert console.run("/add nonsense bob") == [
        "error: That is not a contact card (it should start with 'card:')."
    ]
    assert console.backend.contacts() == []


@pytest.mark.parametrize("line", ["/add", "/add card:b0b"])
def test_add_without_card_and_name_prints_usage(console, line):
    assert console.run(line) == ["error: usage: /add CARD NAME [-- NOTE]"]


def test_add_passes_a_note_for_the_contact_request(console):
    assert console.run("/add card:b0b Bob Smith -- it's Alice from the climbing club") == ["added Bob Smith"]
    assert console.backend.notes == {"Bob Smith": "it's Alice from the climbing club"}


def test_contacts_lists_presence_route_and_unread_sorted_by_name(console):
    console.backend.add("zoe", presence="connected", route="relayed", unread=2)
    console.backend.add("bob", presence="offline", last_seen=T0 - 3600)
    console.backend.add("Carl", presence="away", route="direct")
    console.backend.add("dan")
    console.backend.add("eve", presence="seen", last_seen=T0 - 60)
    assert console.run("/contacts") == [
        "bob: last seen 21:13",
        "Carl: away, direct",
        "dan: offline",
        "eve: in the network",
        "zoe: connected, relayed, 2 unread",
    ]


def test_contacts_last_seen_on_another_day_shows_the_date(console):
    console.backend.add("bob", last_seen=T0 - 3 * 86400)
    console.backend.add("carol", last_seen=T0 - 365 * 86400)
    assert console.run("/contacts") == [
        "bob: last seen 11 Nov", "carol: last seen 2022-11-14"]


def test_contacts_when_there_are_none_says_how_to_add(console):
    assert console.run("/contacts") == ["no contacts yet; /add CARD NAME adds one"]


def test_card_prints_my_card(console):
    assert console.run("/card") == ["card:alice0123456789"]


def test_refresh_prints_the_status_when_it_completes(console):
    assert console.run("/refresh") == ["refreshing..."]
    console.backend.set_status(Status(12, ("203.0.113.7", 4000), "direct"))
    assert console.out == ["refreshing..."]  # status events alone print nothing
    console.backend.refreshes[0].callback(None)
    assert console.out[1:] == [
        "DHT peers: 12; External address: 203.0.113.7:4000; Reachability: direct"
    ]


def test_refresh_failure_is_an_error_line(console):
    console.run("/refresh")
    console.backend.refreshes[0].errback(Failure(UserError("No bootstrap node answered.")))
    assert console.out[1:] == ["error: refresh failed: No bootstrap node answered."]


def test_unexpected_refresh_failure_is_reported_without_details(console):
    console.run("/refresh")
    console.backend.refreshes[0].errback(Failure(RuntimeError("bug")))
    assert console.out[1:] == ["error: refresh failed (details in the log)"]


def test_status_shows_ipv6_addresses_in_brackets(console):
    console.backend.set_status(Status(3, ("2001:db8::1", 5000), "relayed"))
    assert console.run("/status") == [
        "DHT peers: 3; External address: [2001:db8::1]:5000; Reachability: relayed"
    ]


def test_away_and_back_set_my_status_and_confirm(console):
    assert console.run("/away") == ["* you are away"]
    assert console.backend.status().my_status == "away"
    assert console.run("/back") == ["* you are online"]
    assert console.backend.my_statuses == ["away", "online"]


def test_status_says_so_when_i_am_away(console):
    console.backend.set_status(Status(3, None, "unknown"))
    assert console.run("/status") == [
        "DHT peers: 3; External address: unknown; Reachability: unknown"]
    console.run("/away")
    assert console.run("/status") == [
        "DHT peers: 3; External address: unknown; Reachability: unknown; You: away"]


def test_help_lists_every_command(console):
    lines = console.run("/help")
    for command in ("/open", "/msg", "/history", "/contacts", "/add", "/rename", "/remove", "/requests",
                    "/accept", "/ignore", "/block", "/card", "/retry", "/refresh", "/status",
                    "/away", "/back", "/quit", "/help"):
        assert any(line.startswith(command + " ") for line in lines), command


def test_quit_calls_on_quit_once_and_ignores_later_lines(console):
    console.backend.add("bob")
    console.run("/quit")
    console.run("/quit")
    assert console.run("/msg bob late") == []
    assert console.quits == 1
    assert console.backend.sent == []


@pytest.mark.parametrize(
    "line, error",
    [
        ("/frobnicate x", "error: unknown command '/frobnicate'; /help lists commands"),
        ("/MSG bob hi", "error: unknown command '/MSG'; /help lists commands"),
    ],
)
def test_bad_commands_print_one_error_line(console, line, error):
    assert console.run(line) == [error]


def test_blank_lines_are_ignored(console):
    assert console.run("   ") == []


def test_backend_bug_prints_an_error_and_the_console_keeps_going(console):
    def broken(name, text):
        raise KeyError(name)

    console.backend.add("bob")
    console.backend.send_message = broken
    assert console.run("/msg bob hi") == ["error: /msg failed unexpectedly (details in the log)"]
    assert console.run("/card") == ["card:alice0123456789"]


def test_end_of_input_with_nothing_pending_quits_at_once(console):
    console.ui.input_ended()
    assert console.quits == 1
    assert console.clock.getDelayedCalls() == []


def test_end_of_input_waits_for_pending_sends_to_settle(console):
    console.backend.add("bob")
    console.run("/msg bob one")
    console.run("/msg bob two")
    first, second = (m.id for m in console.backend.history("bob"))
    console.ui.input_ended()
    console.backend.set_state(first, "delivered")
    console.backend.set_state(second, "sent")
    assert console.quits == 0
    console.backend.set_state(second, "failed")
    assert console.quits == 1
    assert console.clock.getDelayedCalls() == []


def test_end_of_input_gives_up_waiting_after_the_grace_period(console):
    console.backend.add("bob")
    console.run("/msg bob anyone there?")
    console.ui.input_ended()
    console.clock.advance(14.9)
    assert console.quits == 0
    console.clock.advance(0.1)
    assert console.quits == 1


def test_quit_after_end_of_input_cancels_the_grace_timer(console):
    console.backend.add("bob")
    console.run("/msg bob hi")
    console.ui.input_ended()
    console.ui.line_received("/quit")
    assert console.quits == 1
    assert console.clock.getDelayedCalls() == []


class FakeTransport:
    disconnecting = False

    def loseConnection(self):
        raise AssertionError("the console must not close stdin")


def test_protocol_feeds_lines_and_reports_end_of_input(console):
    proto = ConsoleProtocol(console.ui)
    proto.makeConnection(FakeTransport())
    console.backend.add("bob")
    proto.dataReceived("/msg bob h\u00e9llo\r\n/ca".encode())
    proto.dataReceived(b"rd\n")
    assert console.backend.sent == [("bob", "h\u00e9llo")]
    assert console.out[-1] == "card:alice0123456789"
    proto.connectionLost(None)
    console.clock.advance(15)
    assert console.quits == 1


def test_protocol_survives_invalid_utf8_and_overlong_lines(console):
    proto = ConsoleProtocol(console.ui)
    proto.makeConnection(FakeTransport())
    proto.dataReceived(b"/\xff\xfe\n")
    proto.dataReceived(b"x" * (ConsoleProtocol.MAX_LENGTH + 10))
    proto.dataReceived(b"\n/card\n")
    assert console.out == [
        "error: unknown command '/\ufffd\ufffd'; /help lists commands",
        "error: input line longer than 65536 bytes ignored",
        "card:alice0123456789",
    ]


def test_queued_and_stored_say_for_whom_they_wait(console):
    console.backend.add("bob")
    console.run("/msg bob hi")
    message_id = console.backend.history("bob")[-1].id
    for state in ("queued", "stored", "delivered"):
        console.backend.set_state(message_id, state)
    assert console.out == ["(sending to bob)", "(queued for bob)", "(stored for bob)", "(delivered to bob)"]


def test_end_of_input_quits_once_every_message_is_stored_in_the_network(console):
    console.backend.add("bob")
    console.run("/msg bob hi")
    console.ui.input_ended()
    assert console.quits == 0
    console.backend.set_state(console.backend.history("bob")[-1].id, "stored")
    assert console.quits == 1


def test_receipts_for_messages_of_an_earlier_run_are_printed_once():
    clock = Clock()
    backend = BackendDouble(now=clock.seconds)
    backend.add("bob")
    earlier = backend.past("bob", True, "from yesterday", T0 - 86400, "stored")
    out = []
    ui = ConsoleUI(backend, out.append, lambda: None, clock)
    ui.start()
    backend.set_state(earlier.id, "delivered")
    backend.set_state(earlier.id, "delivered")
    assert out[1:] == ["(delivered to bob)"]


# Conversations, names with spaces, history.

def test_plain_text_without_an_open_conversation_is_a_hint(console):
    console.backend.add("bob")
    assert console.run("hello") == ["error: no conversation open: /open NAME first (or /msg NAME TEXT)"]
    assert console.backend.sent == []


def test_open_sends_plain_text_there_and_double_slash_escapes_a_slash(console):
    console.backend.add("Ben Big")
    assert console.run("/open Ben Big") == ["* talking to Ben Big: lines not starting with / go there"]
    assert console.run("hi ben") == ["(sending to Ben Big)"]
    console.run("//shrug")
    assert console.backend.sent == [("Ben Big", "hi ben"), ("Ben Big", "/shrug")]


def test_open_shows_the_latest_messages_of_the_conversation_and_marks_them_read(console):
    console.backend.add("bob", unread=1)
    console.backend.past("bob", True, "are you there?", T0 - 86400, "delivered")
    console.backend.past("bob", False, "yes", T0 - 60, "received")
    assert console.run("/open bob")[1:] == [
        "-- the last 2 messages with bob --",
        "[2023-11-13 22:13] you: are you there? (delivered)",
        "[2023-11-14 22:12] bob: yes",
    ]
    assert console.backend.contacts()[0].unread == 0


@pytest.mark.parametrize("line, name, text", [
    ("/msg Ben Big hello there", "Ben Big", "hello there"),
    ('/msg "Ben Big" hello', "Ben Big", "hello"),
    ("/msg ben big hello", "Ben Big", "hello"),  # letter case
    ("/msg ca hello", "carol", "hello"),  # the start of one name
    ("/msg Ben hi", "Ben", "hi"),  # a whole name beats a prefix of a longer one
    ('/msg "Ben" Big news', "Ben", "Big news"),
])
def test_names_with_spaces_by_whole_name_quotes_or_unique_prefix(console, line, name, text):
    console.backend.add("Ben Big")
    console.backend.add("Ben")
    console.backend.add("carol")
    console.run(line)
    assert console.backend.sent == [(name, text)]


def test_an_ambiguous_prefix_names_the_candidates(console):
    console.backend.add("Ben Big")
    console.backend.add("Bea")
    assert console.run("/open B") == [
        "error: 'B' could be Bea, Ben Big: type more of the name, or quote it"]
    assert console.run('/msg "Ben Big hi') == ['error: a quote (") is not closed']


def test_open_an_unknown_name_is_one_error_line(console):
    assert console.run("/open zed") == ["error: no one named 'zed' here (/contacts, /requests list them)"]
    assert console.run("/open") == ["error: usage: /open NAME"]


def test_history_of_the_open_conversation_or_a_named_one_last_n(console):
    console.backend.add("bob")
    console.backend.add("Ben Big")
    for i in range(25):
        console.backend.past("bob", False, f"m{i}", T0 + i * 60, "received")
    console.backend.past("Ben Big", True, "yo", T0, "queued")
    assert console.run("/history") == [
        "error: no conversation open: /open NAME first (or /history NAME)"]
    console.run("/open bob")
    lines = console.run("/history")
    assert lines[0] == "-- the last 20 messages with bob --" and lines[-1] == "[2023-11-14 22:37] bob: m24"
    assert len(lines) == 21
    assert console.run("/history 2")[1:] == ["[2023-11-14 22:36] bob: m23", "[2023-11-14 22:37] bob: m24"]
    assert console.run("/history Ben Big 5") == [
        "-- the last message with Ben Big --", "[2023-11-14 22:13] you: yo (queued)"]
    assert console.run("/history Ben Big 0") == ["error: usage: /history [NAME] [N], N at least 1"]


def test_history_with_no_messages_says_so(console):
    console.backend.add("bob")
    assert console.run("/history bob") == ["no messages with bob yet"]


# Contact management and requests.

def test_rename_keeps_the_open_conversation_and_receipts_under_the_new_name(console):
    console.backend.add("bob")
    console.run("/open bob")
    console.run("hi")
    assert console.run("/rename bob Bob Smith") == ["renamed bob to Bob Smith"]
    console.run("still you?")
    console.backend.set_state(console.backend.history("Bob Smith")[0].id, "delivered")
    assert console.backend.sent == [("bob", "hi"), ("Bob Smith", "still you?")]
    assert console.out[-1] == "(delivered to Bob Smith)"
    console.clock.advance(0)
    assert console.out[-1] == "(delivered to Bob Smith)"  # the conversation stayed open
    assert console.run('/rename "Bob Smith" "Bob"') == ["renamed Bob Smith to Bob"]
    assert console.run("/rename Bob") == ["error: usage: /rename NAME NEW"]


def test_remove_closes_its_conversation(console):
    console.backend.add("Ben Big")
    console.run("/open Ben")
    assert console.run("/remove Ben Big") == [
        "removed Ben Big; the messages stay in the history",
        "* Ben Big is no longer a contact; no conversation open"]
    assert console.backend.contacts() == []
    assert console.run("hello?") == ["error: no conversation open: /open NAME first (or /msg NAME TEXT)"]


def test_a_contact_removed_by_another_ui_closes_its_conversation(console):
    console.backend.add("bob")
    console.run("/open bob")
    console.backend.remove_contact("bob")
    console.clock.advance(0)
    assert console.out[-1] == "* bob is no longer a contact; no conversation open"


def test_a_request_is_a_star_line_with_its_note(console):
    console.backend.request("dave", note="we met at the\nconference")
    console.backend.request("Eve Ng")
    assert console.out == ["* request from dave: we met at the / conference", "* request from Eve Ng"]


def test_requests_waiting_at_start_are_shown_after_the_greeting():
    clock, backend, out = Clock(), BackendDouble(), []
    backend.request("dave", note="hi")
    ConsoleUI(backend, out.append, lambda: None, clock).start()
    assert out == ["kadchat: you are alice; /help lists commands", "* request from dave: hi"]


def test_requests_accept_ignore_and_block(console):
    console.backend.request("dave", note="hi")
    console.backend.request("Eve Ng")
    console.backend.request("mallory", card="card:ma11")
    assert console.run("/requests") == [
        "dave: hi (2023-11-14 22:13)", "Eve Ng (2023-11-14 22:13)", "mallory (2023-11-14 22:13)"]
    assert console.run("/accept dave") == ["added dave"]
    assert console.run("/ignore Eve") == ["ignored the request from Eve Ng"]
    assert console.run("/block mallory") == ["blocked mallory"]
    assert console.backend.blocked == ["card:ma11"]
    assert [c.name for c in console.backend.contacts()] == ["dave"]
    assert console.run("/requests") == ["no contact requests"]
    assert console.run("/accept dave") == ["error: no one named 'dave' here (/contacts, /requests list them)"]


def test_block_a_contact_closes_its_conversation(console):
    console.backend.add("bob")
    console.run("/open bob")
    assert console.run("/block bob") == ["blocked bob", "* bob is no longer a contact; no conversation open"]
    assert console.backend.blocked == ["card:bob"]


# At a terminal.

class Terminal(Console):
    def __init__(self):
        self.prompts = []
        super().__init__(interactive=True, show_prompt=self.prompts.append)


def test_at_a_terminal_own_messages_are_echoed_with_time_and_name():
    t = Terminal()
    t.backend.add("Ben Big")
    t.run("/open Ben Big")
    assert t.run("hi / there") == ["[22:13:20] you to Ben Big: hi / there", "(sending to Ben Big)"]
    assert t.prompts == ["> ", "Ben Big> "]


def test_without_a_terminal_own_messages_are_not_echoed(console):
    console.backend.add("bob")
    assert console.run("/msg bob hi") == ["(sending to bob)"]


def test_at_a_terminal_quit_with_undelivered_messages_warns_once_and_they_stay_queued():
    t = Terminal()
    for name in ("bob", "carol", "dan"):
        t.backend.add(name)
        t.run(f"/msg {name} hi {name}")
    t.backend.set_state(t.backend.history("dan")[0].id, "stored")  # in the network: no need to wait
    assert t.run("/quit") == [
        "* 2 messages not delivered yet (to bob, carol): they stay queued and go out when kadchat runs again; "
        "/quit again leaves"]
    assert t.quits == 0
    t.ui.input_ended()  # Ctrl-D (or Ctrl-C) confirms, as a second /quit does
    assert t.quits == 1


def test_at_a_terminal_one_undelivered_message_is_one_message():
    t = Terminal()
    t.backend.add("bob")
    t.run("/msg bob hi")
    assert t.run("/quit") == [
        "* 1 message not delivered yet (to bob): it stays queued and goes out when kadchat runs again; "
        "/quit again leaves"]
    assert t.run("/quit") == []
    assert t.quits == 1


def test_at_a_terminal_only_stored_messages_need_no_warning():
    t = Terminal()
    t.backend.add("bob")
    t.run("/msg bob hi")
    t.backend.set_state(t.backend.history("bob")[0].id, "stored")
    assert t.run("/quit") == []
    assert t.quits == 1


def test_at_a_terminal_quit_with_everything_delivered_leaves_at_once():
    t = Terminal()
    t.backend.add("bob")
    t.run("/msg bob one")
    t.backend.set_state(t.backend.history("bob")[0].id, "delivered")
    assert t.run("/quit") == []
    assert t.quits == 1


def test_without_a_terminal_quit_never_asks(console):
    console.backend.add("bob")
    console.run("/msg bob one")
    assert console.run("/quit") == []
    assert console.quits == 1


# Tab completion (kadchat.ui.console_names.completions, fed by show_names).

def test_completion_offers_commands_then_the_names_a_command_takes():
    contacts, requests = ["Ben Big", "bob", "carol"], ["dave"]
    assert completions("/re", COMMANDS, contacts, requests) == ["/rename", "/remove", "/requests", "/retry", "/refresh"]
    assert completions("/msg b", COMMANDS, contacts, requests) == ["Ben Big", "bob"]
    assert completions("/msg ben b", COMMANDS, contacts, requests) == ["Ben Big"]
    assert completions("/msg Ben Big hel", COMMANDS, contacts, requests) == []
    assert completions("/accept ", COMMANDS, contacts, requests) == ["dave"]
    assert completions("/block ", COMMANDS, contacts, requests) == ["Ben Big", "bob", "carol", "dave"]
    assert completions("/card ", COMMANDS, contacts, requests) == []
    assert completions("hello b", COMMANDS, contacts, requests) == []


def test_completion_knows_every_command():
    assert set(COMMANDS) == set(Console().ui._commands)


def test_at_a_terminal_names_for_completion_follow_contacts_and_requests():
    shown = []
    t = Console(interactive=True, show_names=lambda contacts, requests: shown.append((contacts, requests)))
    t.backend.add("bob")
    t.run("/add card:c4r01 Carol Ann")
    t.backend.request("dave")
    t.run("/accept dave")
    assert shown[-3:] == [(["bob", "Carol Ann"], []), (["bob", "Carol Ann"], ["dave"]),
                          (["bob", "Carol Ann", "dave"], [])]


def test_at_a_terminal_the_start_says_who_wrote_while_you_were_away():
    clock, backend, out = Clock(), BackendDouble(), []
    backend.add("bob", unread=2)
    backend.add("Ben Big", unread=1)
    backend.add("carol")
    ConsoleUI(backend, out.append, lambda: None, clock, interactive=True).start()
    assert out[1:] == ["* 1 unread from Ben Big: /open Ben Big", "* 2 unread from bob: /open bob"]


# -- file transfers (kadchat.ui.console_files) -------------------------------------


def _file_console():
    from tests.backend_double import BackendDouble
    from twisted.internet import task
    backend, lines = BackendDouble(), []
    backend.add("bob")
    ui = ConsoleUI(backend, lines.append, lambda: None, task.Clock())
    ui.start()
    lines.clear()
    return backend, ui, lines


def test_an_offer_shows_with_its_id_and_accept_by_number_takes_it():
    backend, ui, lines = _file_console()
    offer = backend.offer_file("bob", "cat.jpg", 2_500_000)
    assert lines == [f"* bob offers cat.jpg (2.5 MB) as #{offer.id}; /accept {offer.id}"]
    ui.line_received(f"/accept #{offer.id}")
    assert lines[-1] == f"* receiving cat.jpg from bob as #{offer.id}"
    backend.set_transfer(offer.id, state="done", path="/dl/cat.jpg", done=2_500_000)
    assert lines[-1] == "* received cat.jpg from bob: /dl/cat.jpg"
    ui.line_received("/files")
    assert lines[-1] == f"#{offer.id} from bob: cat.jpg, 2.5 MB of 2.5 MB, done"


def test_accept_with_a_name_is_still_a_contact_request():
    backend, ui, lines = _file_console()
    backend.request("carol")
    ui.line_received("/accept carol")
    assert lines[-1] == "added carol"
    ui.line_received("/accept 7")
    assert lines[-1] == "error: #7 is not a file offered to you"


def test_send_and_cancel_and_their_mistakes():
    backend, ui, lines = _file_console()
    ui.line_received("/send bob /tmp/notes.txt")
    assert lines[-1] == "* offered notes.txt (1.0 kB) to bob as #1"
    ui.line_received("/cancel 1")
    assert lines[-1] == "* #1 notes.txt cancelled: cancelled here"
    ui.line_received("/send bob")
    assert lines[-1] == "error: usage: /send NAME PATH"
    ui.line_received("/cancel bob")
    assert lines[-1] == "error: usage: /cancel ID (the number /files shows)"
    backend.set_transfer(1, name="evil\x1b[2Jname")
    ui.line_received("/files")
    assert "\x1b" not in lines[-1]
