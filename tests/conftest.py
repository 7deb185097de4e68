"""Test-run policy: the slowest scenario tests (marked `slow`) run in CI (CI=true) or with
--slow; a developer's default run stays quick."""

import os

import pytest

from kadchat.network_mode import ROUTERS_ENV


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the tests marked slow (CI=true does too)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow") or os.environ.get("CI", "").lower() == "true":
        return
    skip = pytest.mark.skip(reason="slow: runs in CI (CI=true) or with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# No test may reach the real BitTorrent routers: a client without bootstrap nodes
# rides Mainline (kadchat.network_mode), and child processes inherit this.
os.environ[ROUTERS_ENV] = ""
