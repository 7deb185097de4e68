import os
import stat
import subprocess
import sys

import pytest

from kadchat import datadir
from kadchat.errors import UserError
from tests.client_helpers import CHILD_ENV, CLIENT, make_identity


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_data_directory_is_0700_even_under_a_lax_umask(tmp_path):
    old = os.umask(0o022)
    try:
        datadir.create(tmp_path / "data")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "data") == 0o700


def test_an_existing_data_directory_is_left_as_it_is(tmp_path):
    os.chmod(tmp_path, 0o750)
    datadir.create(tmp_path)
    assert _mode(tmp_path) == 0o750


def test_a_private_directory_has_no_warning(tmp_path):
    os.chmod(tmp_path, 0o700)
    assert datadir.exposure_warning(tmp_path) is None


def test_a_directory_others_can_read_or_write_is_one_line_naming_the_fix(tmp_path):
    for mode in (0o755, 0o750, 0o703, 0o1777):
        os.chmod(tmp_path, mode)
        warning = datadir.exposure_warning(tmp_path)
        assert f"mode {mode & 0o7777:04o}" in warning and f"chmod 700 {tmp_path}" in warning
        assert "\n" not in warning


def test_a_locked_data_directory_refuses_a_second_lock_until_the_first_is_released(tmp_path):
    first = datadir.lock(tmp_path)
    try:
        with pytest.raises(UserError, match=f"^another kadchat client is using {tmp_path}$"):
            datadir.lock(tmp_path)
    finally:
        os.close(first)
    os.close(datadir.lock(tmp_path))
    assert _mode(tmp_path / "lock") == 0o600


# -- where it is by default ------------------------------------------------------------

def test_by_default_it_is_the_per_user_data_folder(tmp_path):
    home = str(tmp_path / "home")
    assert datadir.default("identity.txt", cwd=str(tmp_path), environ={"HOME": home}) == \
        os.path.join(home, ".local", "share", "kadchat")
    assert datadir.default("identity.txt", cwd=str(tmp_path), environ={"HOME": home, "XDG_DATA_HOME": "/data"}) == \
        "/data/kadchat"


def test_a_relative_or_empty_xdg_data_home_is_ignored_as_the_spec_says(tmp_path):
    home = str(tmp_path / "home")
    for value in ("", "relative/path"):
        assert datadir.default("identity.txt", cwd=str(tmp_path), environ={"HOME": home, "XDG_DATA_HOME": value}) == \
            os.path.join(home, ".local", "share", "kadchat")


def test_a_current_directory_holding_an_identity_is_used_as_before(tmp_path):
    (tmp_path / "identity.txt").write_text("kc1... alice\n")
    assert datadir.default("identity.txt", cwd=str(tmp_path), environ={"XDG_DATA_HOME": "/data"}) == str(tmp_path)


def client_in(cwd, env, *flags):
    """client_node.py -N without --data-dir, started in `cwd`, quitting at once."""
    return subprocess.run([sys.executable, CLIENT, "-N", "--interface", "127.0.0.1", *flags], cwd=cwd, env=env,
                          input="/quit\n", capture_output=True, text=True, timeout=60)


def test_the_client_without_data_dir_keeps_its_files_out_of_the_current_directory(tmp_path):
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    env = {k: v for k, v in CHILD_ENV.items() if k != "XDG_DATA_HOME"}
    env["HOME"] = str(home)
    result = client_in(work, env, "--name", "alice")
    assert result.returncode == 0, result.stderr
    folder = home / ".local" / "share" / "kadchat"
    assert (folder / "identity.txt").read_text().splitlines()[-1].endswith(" alice")
    assert f"{folder / 'identity.txt'} holds your card" in result.stdout
    assert list(work.iterdir()) == []
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700


def test_the_client_in_a_folder_of_the_old_layout_keeps_using_it(tmp_path):
    make_identity(tmp_path / "old", "bob")
    env = dict(CHILD_ENV, XDG_DATA_HOME=str(tmp_path / "xdg"))
    result = client_in(tmp_path / "old", env)
    assert result.returncode == 0, result.stderr
    assert "you are bob;" in result.stdout
    assert not (tmp_path / "xdg").exists()
