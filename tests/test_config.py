import os
import subprocess
import sys

import pytest

from config import CONFIG_FILE, Config, build_config, parse_client_args, read_config_file
from kadchat.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _conf(directory, text):
    path = directory / CONFIG_FILE
    path.write_text(text)
    return path


def _exit(capsys, argv):
    with pytest.raises(SystemExit) as caught:
        parse_client_args(argv)
    return caught.value.code, capsys.readouterr().err


def test_defaults_without_flags_or_file(tmp_path):
    config = parse_client_args(["--data-dir", str(tmp_path)])
    assert config == Config(data_dir=str(tmp_path))
    # The epoch is the network's (kadchat.network_mode): 300 s, an hour on Mainline.
    assert (config.port, config.k, config.alpha, config.epoch_seconds, config.record_ttl) == (0, 8, 3, None, 600)
    assert (config.network, config.introducer) == ("auto", False)
    assert (config.no_gui, config.refresh, config.refresh_interval) == (False, False, 10.0)


def test_all_client_flags(tmp_path):
    config = parse_client_args(
        ["-p", "7000", "-I", "127.0.0.1", "-P", "6881", "-l", "log.txt", "-N", "-r",
         "--data-dir", str(tmp_path), "--name", "alice", "--interface", "127.0.0.1"]
    )
    assert config == Config(
        data_dir=str(tmp_path), port=7000, bootstrap_host="127.0.0.1", bootstrap_port=6881,
        log_file="log.txt", no_gui=True, refresh=True, name="alice", interface="127.0.0.1",
    )


@pytest.mark.parametrize("argv", [["-I", "127.0.0.1"], ["-P", "6881"]])
def test_bootstrap_host_without_port_is_a_one_line_error(capsys, tmp_path, argv):
    code, err = _exit(capsys, argv + ["--data-dir", str(tmp_path)])
    assert code == 2
    assert err == "error: -I and -P go together: give both or neither (see --help)\n"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-p", "seven"], "expected a whole number"),
        (["-p", "70000"], "out of range"),
        (["-P", "0", "-I", "h"], "out of range"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["-p"], "expected one argument"),
        (["--name", "  "], "empty"),
        (["-I", "bad host!", "-P", "1"], "bad host"),
    ],
)
def test_bad_flags_exit_2_with_one_error_line(capsys, argv, message):
    code, err = _exit(capsys, argv)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err


def test_help_exits_0_and_lists_the_flags(capsys):
    with pytest.raises(SystemExit) as caught:
        parse_client_args(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for flag in ("-p PORT", "-I HOST", "-P PORT", "-l LOGFILE", "-N", "-r", "--config", "--data-dir", "--name"):
        assert flag in out


def test_config_file_overrides_defaults_and_flags_override_file(tmp_path):
    _conf(tmp_path, "# settings\n\nport = 7000\nno_gui = yes\nname = bob smith\nk = 20\nrefresh_interval = 2.5\n")
    config = parse_client_args(["--data-dir", str(tmp_path), "-p", "7001"])
    assert (config.port, config.no_gui, config.name, config.k, config.refresh_interval) == (7001, True, "bob smith", 20, 2.5)


def test_flags_replace_the_bootstrap_pair_of_the_file(tmp_path):
    _conf(tmp_path, "bootstrap_host = 127.0.0.2\nbootstrap_port = 1\n")
    config = parse_client_args(["--data-dir", str(tmp_path), "-I", "localhost", "-P", "2"])
    assert (config.bootstrap_host, config.bootstrap_port) == ("localhost", 2)


def test_explicit_config_path_is_used_and_must_exist(tmp_path):
    path = tmp_path / "other.conf"
    path.write_text("port = 9\n")
    assert parse_client_args(["--data-dir", str(tmp_path), "--config", str(path)]).port == 9
    with pytest.raises(UserError, match="does not exist"):
        parse_client_args(["--data-dir", str(tmp_path), "--config", str(tmp_path / "missing.conf")])


def test_empty_value_unsets_an_optional_setting(tmp_path):
    path = _conf(tmp_path, "log_file =\nname = \n")
    assert read_config_file(path) == {"log_file": None, "name": None}


@pytest.mark.parametrize(
    "text, message",
    [
        ("color = blue\n", ":1: unknown setting 'color'"),
        ("# c\nport = 7000 # mine\n", ":2: port: expected a whole number"),
        ("port = 1\nport = 2\n", ":2: port is already set on line 1"),
        ("just words\n", ":1: expected 'key = value'"),
        ("no_gui = maybe\n", "no_gui: expected true or false"),
        ("k = 0\n", "k: must be at least 1"),
        ("refresh_interval = 0\n", "refresh_interval: must be more than 0"),
        ("refresh_interval = nan\n", "refresh_interval: must be more than 0"),
        ("port =\n", "port: expected a whole number"),
        ("name = #x\n", "name: a name cannot start with '#'"),
        ("data_dir = /tmp\n", "unknown setting 'data_dir'"),
    ],
)
def test_bad_config_file_is_a_user_error_with_file_and_line(tmp_path, text, message):
    path = _conf(tmp_path, text)
    with pytest.raises(UserError) as caught:
        parse_client_args(["--data-dir", str(tmp_path)])
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)


def test_non_utf8_config_file_is_a_user_error(tmp_path):
    (tmp_path / CONFIG_FILE).write_bytes(b"port = 1\n\xff\n")
    with pytest.raises(UserError, match=":2: not UTF-8"):
        parse_client_args(["--data-dir", str(tmp_path)])


def test_contradicting_settings_in_file_are_refused(tmp_path):
    _conf(tmp_path, "bootstrap_host = 127.0.0.1\n")
    with pytest.raises(UserError, match="bootstrap_host and bootstrap_port go together"):
        parse_client_args(["--data-dir", str(tmp_path)])
    _conf(tmp_path, "publish_interval = 700\n")
    with pytest.raises(UserError, match="publish_interval must be shorter than record_ttl"):
        parse_client_args(["--data-dir", str(tmp_path)])
    _conf(tmp_path, "keepalive_interval = 50\n")
    with pytest.raises(UserError, match="gone_after must be longer than keepalive_interval"):
        parse_client_args(["--data-dir", str(tmp_path)])


def test_prog_name_appears_in_help(capsys):
    with pytest.raises(SystemExit):
        build_config(["--help"], "myprog.py")
    assert "usage: myprog.py" in capsys.readouterr().out


def test_bad_flag_in_a_real_process_prints_no_traceback():
    result = subprocess.run(
        [sys.executable, "-c", "import config, sys; config.parse_client_args(sys.argv[1:])", "-p", "x"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_mainline_and_introducer_flags_and_the_network_key(tmp_path, capsys):
    config = parse_client_args(["--data-dir", str(tmp_path), "--mainline", "--introducer"])
    assert (config.network, config.introducer) == ("mainline", True)
    (tmp_path / "kadchat.conf").write_text("network = private\nintroducer = yes\n")
    config = parse_client_args(["--data-dir", str(tmp_path)])
    assert (config.network, config.introducer) == ("private", True)
    assert parse_client_args(["--data-dir", str(tmp_path), "--mainline"]).network == "mainline"  # the flag wins
    (tmp_path / "kadchat.conf").write_text("network = kademlia\n")
    with pytest.raises(UserError, match=r"kadchat.conf:1: network: expected one of auto, mainline, private"):
        parse_client_args(["--data-dir", str(tmp_path)])
