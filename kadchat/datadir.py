"""The data directory: private to its user.

Everything in it is private (the history is plaintext SQLite), so the client
runs with umask PRIVATE_UMASK and creates the directory 0700.
"""

import os
import stat

from kadchat.errors import UserError

PRIVATE_UMASK = 0o077  # files 0600, directories 0700, whoever creates them


def create(data_dir) -> None:
    """Make `data_dir` (0700) unless it exists; UserError if that fails."""
    try:
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create data directory {data_dir}: {e.strerror}") from None


def exposure_warning(data_dir):
    """A one-line warning if other users can read or change `data_dir`, else None."""
    mode = stat.S_IMODE(os.stat(data_dir).st_mode)
    if not mode & 0o077:
        return None
    return (f"{data_dir} is open to other users (mode {mode:04o}) and holds your conversations and contacts; "
            f"fix it with: chmod 700 {data_dir}")
