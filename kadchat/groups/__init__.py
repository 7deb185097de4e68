"""Group chats (issue 17): a signed membership log, signed messages in a DAG with
one total order, a SQLite store, and sync between members over their sessions.

membership  the group id and the membership log (create, add, remove), verified entry by entry
messages    a signed group message, its id, and the total order every member computes
store       groups.db: groups, their logs, messages, heads and per-author frontiers
syncwire    the session records 0x10..0x13 (summary, log entry, want, message)
engine      Groups: what the service calls, and the sync that runs whenever members have a session
"""
