"""Live presence over sessions (kadchat.liveness), by the transcript of what it sends and reports."""

from twisted.internet import task

from kadchat.liveness import Liveness

BOB = b"B" * 32


def setup(**timing):
    clock, transcript = task.Clock(), []
    clock.advance(1000)
    live = Liveness(
        clock,
        lambda peer, status, time: transcript.append(("send", peer, status, time)) or True,
        lambda peer, status, their: transcript.append(("hello", peer, status, their)),
        lambda peer: transcript.append(("gone", peer, clock.seconds())),
        **timing,
    )
    live.start()
    return clock, transcript, live


def test_a_new_session_gets_our_hello_and_their_hello_makes_them_live():
    clock, transcript, live = setup()
    live.session_ready(BOB)
    live.presence_received(BOB, "online", 2000.0)
    # ... and their first hello gets ours once more: they may not have heard the first
    assert transcript == [("send", BOB, "online", 1000), ("hello", BOB, "online", 2000.0),
                          ("send", BOB, "online", 1000)]
    assert live.is_live(BOB)
    live.presence_received(BOB, "online", 2001.0)  # a keep-alive: no answer
    assert len(transcript) == 4


def test_an_unanswered_hello_is_said_again_at_each_check_until_the_contact_speaks():
    clock, transcript, live = setup(keepalive=3.0, gone_after=9.0)
    live.session_ready(BOB)  # our hello is lost, and so is theirs
    clock.pump([1.0] * 3)
    sends = [t[3] - 1000 for t in transcript if t[0] == "send"]
    assert sends == [0, 1, 2, 3]  # a check every keepalive / 3
    live.presence_received(BOB, "online", 2000.0)  # heard at last: answered, then keep-alives
    transcript.clear()
    clock.pump([1.0] * 3)
    assert [t[0] for t in transcript] == ["send"]  # the keep-alive 3 s after our last word


def test_an_unanswered_hello_is_given_up_after_the_patience():
    clock, transcript, live = setup(keepalive=3.0, gone_after=9.0)
    live.session_ready(BOB)
    clock.pump([1.0] * 30)
    assert len(transcript) == 10  # at 0, then each second up to 9 s
    assert not live.is_live(BOB)


def test_keepalives_every_15_seconds_and_gone_after_three_missed():
    clock, transcript, live = setup()
    live.session_ready(BOB)
    live.presence_received(BOB, "online", 1000.0)
    transcript.clear()
    for _ in range(12):
        clock.advance(5)
    sends = [t[3] - 1000 for t in transcript if t[0] == "send"]
    gone = [t[2] - 1000 for t in transcript if t[0] == "gone"]
    assert sends == [15, 30, 45]
    assert gone == [50]  # 45 s of silence, measured every 5 s
    clock.advance(60)
    assert not live.is_live(BOB) and len(transcript) == 4


def test_shorter_keepalives_and_patience_as_configured():
    clock, transcript, live = setup(keepalive=2.0, gone_after=5.0)
    live.session_ready(BOB)
    live.presence_received(BOB, "online", 1000.0)
    transcript.clear()
    for _ in range(30):
        clock.advance(2 / 3)
    sends = [round(t[3] - 1000, 1) for t in transcript if t[0] == "send"]
    gone = [round(t[2] - 1000, 1) for t in transcript if t[0] == "gone"]
    assert sends == [2.0, 4.0]
    assert gone == [5.3]  # 5 s of silence, measured every 2/3 s


def test_goodbye_reaches_every_live_contact_twice_and_their_goodbye_is_gone_at_once():
    clock, transcript, live = setup()
    carol = b"C" * 32
    for peer in (BOB, carol):
        live.presence_received(peer, "online", 1000.0)
    live.presence_received(carol, "offline", 1001.0)
    assert transcript[-1] == ("gone", carol, 1000)
    transcript.clear()
    live.goodbye()
    assert transcript == [("send", BOB, "offline", 1000)] * 2
    assert not live.is_live(BOB)


def test_goodbye_reaches_a_contact_that_heard_our_hello_though_we_never_heard_its_own():
    clock, transcript, live = setup()
    live.session_ready(BOB)  # its hello never comes (lost, or unreadable to us): it shows us connected
    transcript.clear()
    live.goodbye()
    assert transcript == [("send", BOB, "offline", 1000)] * 2


def test_our_status_change_is_told_to_live_contacts_at_once():
    clock, transcript, live = setup()
    live.presence_received(BOB, "online", 1000.0)
    live.set_status("away")
    assert transcript[-1] == ("send", BOB, "away", 1000)
    live.stop()
    assert clock.getDelayedCalls() == []


# -- kadchat.presences: the wiring around liveness -----------------------------------

class Calls:
    """Fakes of the contact book, tracker and reachability, logging what Presences asks of them."""

    def __init__(self):
        self.log = []

    # the book
    def has(self, name):
        return name == "bob"

    def is_contact(self, key):
        return key == BOB

    def name_of(self, key):
        return "bob" if key == BOB else None

    def key_of(self, name):
        return BOB

    def seen(self, name, when):
        pass

    # the tracker
    def subscribe(self, listener):
        pass

    def set_connected(self, name, connected):
        self.log.append(("set_connected", name, connected))

    # reachability
    def reach(self, key, presence):
        self.log.append(("reach", key))


def test_a_contact_gone_silent_loses_its_session_before_the_tracker_looks_it_up_again():
    from kadchat.presences import Presences

    clock, calls = task.Clock(), Calls()
    presences = Presences(clock, calls, calls, calls, lambda peer, status, time: True,
                          lambda name, shown: calls.log.append(("shown", name, str(shown))),
                          drop_session=lambda key: calls.log.append(("drop_session", key)))
    presences.liveness.start()
    presences.session_ready(BOB)
    presences.presence_received(BOB, "online", 0.0)
    clock.advance(50)  # three keep-alives missed
    assert calls.log == [("set_connected", "bob", True), ("shown", "bob", "connected"),
                         ("drop_session", BOB), ("set_connected", "bob", False), ("shown", "bob", "offline")]
    presences.liveness.stop()
    assert clock.getDelayedCalls() == []


def test_after_goodbye_a_session_coming_up_gets_no_hello():
    # Stopping takes a while (the offline record): a handshake finishing meanwhile
    # must not show us connected again to a contact that has just seen us leave.
    clock, transcript, live = setup()
    live.session_ready(BOB)
    live.presence_received(BOB, "online", 1000.0)
    live.goodbye()
    transcript.clear()
    live.session_ready(BOB)
    live.set_status("away")
    assert transcript == []
    live.stop()
