"""File transfer between contacts, inside their encrypted sessions (issue 16).

merkle: chunk hashes and the root an offer names; names: safe file names and
the downloads folder; bitmap: which chunks a receiver holds; ledbat: the
delay-based congestion window; frames: the file records' codec; store: the
transfers in SQLite; sending/receiving: one transfer's two ends; manager: all
of them, over an endpoint's sessions.
"""
