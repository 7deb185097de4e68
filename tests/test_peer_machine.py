"""kadchat.sessions.PeerMachine on its own: events in, the transcript of outputs out."""

import pytest

from kadchat.sessions import PeerEvent, PeerMachine, PeerState

E = PeerEvent


class Dummy:
    """Records every output the machine asks for, as (output, session)."""

    def __init__(self):
        self.transcript = []

    def __getattr__(self, output):
        return lambda peer, session: self.transcript.append((output, session))


def machine_in(*events):
    """A machine that went through `events` (session "s0"), and its dummy, emptied."""
    dummy = Dummy()
    machine = PeerMachine("bob", dummy)
    for event in events:
        machine.fire(event, "s0")
    dummy.transcript.clear()
    return machine, dummy


def run(machine, dummy, *steps):
    """Fire (event, session) steps; returns [(state after, outputs)] per step."""
    log = []
    for event, session in steps:
        before = len(dummy.transcript)
        machine.fire(event, session)
        log.append((machine.state, dummy.transcript[before:]))
    return log


def test_something_to_send_starts_a_handshake_and_its_response_establishes():
    machine, dummy = machine_in()
    assert run(machine, dummy, (E.WANTED, None), (E.WANTED, None), (E.RESPONSE, "s1")) == [
        (PeerState.HANDSHAKING, [("start_attempt", None)]),
        (PeerState.HANDSHAKING, []),  # one attempt at a time
        (PeerState.ESTABLISHED, [("end_attempt", "s1"), ("promote", "s1")]),
    ]


def test_old_keys_rekey_while_the_current_session_still_sends():
    machine, dummy = machine_in(E.WANTED, E.RESPONSE)
    assert run(machine, dummy, (E.WANTED, None), (E.RESPONSE, "s2")) == [
        (PeerState.REKEYING, [("start_attempt", None)]),
        (PeerState.ESTABLISHED, [("end_attempt", "s2"), ("promote", "s2")]),
    ]


def test_answering_the_peer_waits_for_its_confirmation_instead_of_calling_it_too():
    machine, dummy = machine_in()
    assert run(machine, dummy, (E.ANSWERED, "a1"), (E.WANTED, None), (E.ANSWERED, "a2"), (E.CONFIRMED, "a2")) == [
        (PeerState.AWAITING_CONFIRMATION, [("hold_answer", "a1")]),
        (PeerState.AWAITING_CONFIRMATION, []),
        (PeerState.AWAITING_CONFIRMATION, [("hold_answer", "a2")]),
        (PeerState.ESTABLISHED, [("promote", "a2")]),
    ]


def test_an_answer_never_confirmed_is_dropped_and_then_we_call():
    machine, dummy = machine_in(E.ANSWERED)
    assert run(machine, dummy, (E.UNCONFIRMED, "a1"), (E.WANTED, None)) == [
        (PeerState.IDLE, [("drop_answer", "a1")]),
        (PeerState.HANDSHAKING, [("start_attempt", None)]),
    ]


def test_the_peer_confirming_its_own_handshake_first_does_not_stop_ours():
    machine, dummy = machine_in(E.WANTED, E.ANSWERED)
    assert run(machine, dummy, (E.CONFIRMED, "a1"), (E.RESPONSE, "s1")) == [
        (PeerState.REKEYING, [("promote", "a1")]),
        (PeerState.ESTABLISHED, [("end_attempt", "s1"), ("promote", "s1")]),
    ]


def test_a_lost_session_needs_a_new_handshake_and_one_during_a_rekey_keeps_it_going():
    machine, dummy = machine_in(E.WANTED, E.RESPONSE)
    assert run(machine, dummy, (E.LOST, "s1"), (E.WANTED, None)) == [
        (PeerState.IDLE, [("forget", "s1")]),
        (PeerState.HANDSHAKING, [("start_attempt", None)]),
    ]
    machine, dummy = machine_in(E.WANTED, E.RESPONSE, E.WANTED)
    assert run(machine, dummy, (E.LOST, "s1")) == [(PeerState.HANDSHAKING, [("forget", "s1")])]


def test_giving_up_falls_back_to_what_we_had():
    machine, dummy = machine_in(E.WANTED)
    assert run(machine, dummy, (E.GAVE_UP, None)) == [(PeerState.IDLE, [("end_attempt", None)])]
    machine, dummy = machine_in(E.WANTED, E.RESPONSE, E.WANTED)
    assert run(machine, dummy, (E.GAVE_UP, None)) == [(PeerState.ESTABLISHED, [("end_attempt", None)])]


@pytest.mark.parametrize("history, event", [
    ((), E.RESPONSE),  # an answer with no attempt of ours
    ((), E.LOST),  # no session to lose
    ((E.WANTED, E.RESPONSE), E.GAVE_UP),  # no attempt to give up
])
def test_events_that_cannot_happen_in_a_state_are_refused_with_no_output(history, event):
    machine, dummy = machine_in(*history)
    state = machine.state
    with pytest.raises(RuntimeError):
        machine.fire(event, "x")
    assert machine.state is state and dummy.transcript == []
