"""Groups and their messages as the UIs see them (kadchat.model.Group, GroupMessage)."""

from kadchat.model import Group, GroupMessage


def author_name(key, log, me, my_name, book):
    """Ours, a contact's name for them, the name the admin gave them, or their key's start."""
    if key == me:
        return my_name
    added = next((e.name for e in reversed(log.entries) if e.subject == key and e.name), None)
    return book.name_of(key) or added or key[:4].hex()


def group_view(group, me, my_name, book):
    log = group.log
    name = lambda key: author_name(key, log, me, my_name, book)  # noqa: E731
    return Group(
        name=group.name,
        members=tuple(name(key) for key in log.members),
        admins=tuple(name(key) for key, member in log.members.items() if member.admin),
        active=me in log.members,
    )


def group_message_view(group, message, me, my_name, book):
    return GroupMessage(
        id=message.id.hex(),
        group=group.name,
        author=author_name(message.author, group.log, me, my_name, book),
        outgoing=message.author == me,
        text=message.text,
        timestamp=message.time_ms / 1000,
    )
