"""The data directory: private to its user, and used by one client at a time.

Everything in it is private (the history is plaintext SQLite), so the client
runs with umask PRIVATE_UMASK and creates the directory 0700. A `lock` file in
it, flock()ed for the life of the process, keeps a second client off the same
identity: both would write the history and the presence seq, and the first to
quit would tell contacts "offline" while the other still runs.
"""

import fcntl
import os
import stat

from kadchat.errors import UserError

PRIVATE_UMASK = 0o077  # files 0600, directories 0700, whoever creates them
LOCK_FILE = "lock"


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


def lock(data_dir) -> int:
    """Lock `data_dir` for this process; UserError if another process holds it.

    Returns the lock file's descriptor: keep it open (never close it) for as long
    as the process uses the directory. The kernel drops the lock when the
    process ends, however it ends, so a crash never leaves a stale lock.
    """
    path = os.path.join(data_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by children (PEP 446)
    except OSError as e:
        raise UserError(f"cannot open {path}: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if isinstance(e, BlockingIOError):
            raise UserError(f"another kadchat client is using {data_dir}") from None
        raise UserError(f"cannot lock {path}: {e.strerror}") from None
    return fd
