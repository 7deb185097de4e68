"""The data directory: where it is, private to its user, and used by one client at a time.

By default it is the per-user data folder of the XDG Base Directory spec,
``$XDG_DATA_HOME/kadchat`` (``~/.local/share/kadchat``), except that a current
directory already holding an identity (the original prototype's layout) is
used as before.

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
APP_FOLDER = "kadchat"


def default(identity_file, cwd=None, environ=None) -> str:
    """The data directory without --data-dir: `cwd` (default the current directory)
    if it holds `identity_file`, else the per-user data folder."""
    cwd = os.getcwd() if cwd is None else cwd
    if os.path.exists(os.path.join(cwd, identity_file)):
        return cwd
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(base):  # unset, empty or relative: the spec says ignore it
        base = os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, APP_FOLDER)


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
