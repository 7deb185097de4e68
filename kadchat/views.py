"""The values the UIs see (kadchat.model), made from what the parts know."""

from kadchat.cards import encode_card
from kadchat.model import Contact, Message


def message_view(stored, book):
    """A history row (kadchat.history.StoredMessage) as the UIs show it."""
    return Message(
        id=stored.id.hex(),
        contact=book.name_of(stored.peer) or "?",
        outgoing=stored.outgoing,
        text=stored.text,
        timestamp=stored.timestamp,
        state=stored.state,
    )


def contact_view(name, book, board, route_of):
    """`board`: a kadchat.contactpresence board; `route_of(public_key)`: direct, relayed or
    None, how a live session reaches them."""
    public_key = book.key_of(name)
    presence = board.shown(name)
    return Contact(
        name=name,
        card=encode_card(public_key),
        presence=presence,
        last_seen=book.last_seen(name),
        unread=book.unread(name),
        route=route_of(public_key) if board.connected(name) else None,  # a goodbye ends the route
    )
