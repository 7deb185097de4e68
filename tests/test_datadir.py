import os
import stat

import pytest

from kadchat import datadir
from kadchat.errors import UserError


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
