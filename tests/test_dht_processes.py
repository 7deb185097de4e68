"""dedicated_server.py as a process: one-line errors, clean SIGTERM, and a restart that
rejoins through its saved routing table."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from kademlia import krpc
from kademlia.node import DHTNode
from tests.dht_helpers import REPO_ROOT, ServerProcess, loopback_address

SERVER = [sys.executable, "dedicated_server.py"]


def run_server(*args, timeout=15):
    return subprocess.run(SERVER + list(args), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


class CommandLineErrorTests(unittest.TestCase):
    def assert_one_line_error(self, result):
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("error: "), lines[0])

    def test_an_unknown_flag_is_a_one_line_error_with_exit_code_2(self):
        result = run_server("-p", "0", "--frobnicate")
        self.assertEqual(result.returncode, 2)
        self.assert_one_line_error(result)

    def test_a_missing_port_is_a_one_line_error_with_exit_code_2(self):
        result = run_server()
        self.assertEqual(result.returncode, 2)
        self.assert_one_line_error(result)

    def test_a_bad_bootstrap_address_is_a_one_line_error(self):
        result = run_server("-p", "0", "--host", "127.0.11.1", "-b", "nonsense")
        self.assertNotEqual(result.returncode, 0)
        self.assert_one_line_error(result)

    def test_a_busy_port_is_a_one_line_error_and_a_failure_exit(self):
        busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(busy.close)
        busy.bind(("127.0.11.2", 0))
        result = run_server("-p", str(busy.getsockname()[1]), "--host", "127.0.11.2")
        self.assertNotEqual(result.returncode, 0)
        self.assert_one_line_error(result)
        self.assertIn("cannot listen", result.stderr)


class LifecycleTests(unittest.TestCase):
    timeout = 60

    def setUp(self):
        self.servers = []
        self.nodes = []
        self.addCleanup(self._clean)

    def _clean(self):
        return defer.gatherResults([s.terminate() for s in self.servers] + [n.stop() for n in self.nodes])

    def spawn(self, *args):
        server = ServerProcess.spawn(reactor, *args)
        self.servers.append(server)
        return server

    @defer.inlineCallbacks
    def join_nodes(self, count, through, first_index):
        nodes = []
        for n in range(count):
            node = DHTNode(reactor)
            node.listen(0, loopback_address(first_index + n))
            nodes.append(node)
        self.nodes += nodes
        yield defer.gatherResults([node.bootstrap([through]) for node in nodes])
        return nodes

    def state_path(self):
        """A state file outside the checkout (trial's mktemp is relative to the cwd)."""
        folder = tempfile.mkdtemp(prefix="kadchat-state-")
        self.addCleanup(shutil.rmtree, folder, True)
        return os.path.join(folder, "state.json")

    @defer.inlineCallbacks
    def test_sigterm_exits_cleanly_and_writes_the_state_file(self):
        state = self.state_path()
        seed = self.spawn("-p", "0", "--host", "127.0.12.1")
        seed_address = yield seed.started
        nodes = yield self.join_nodes(5, seed_address, first_index=1200)
        server = self.spawn("-p", "0", "--host", "127.0.12.2", "-b", "%s:%d" % seed_address, "--state", state)
        address = yield server.started
        # Make sure it has joined: the nodes hear from it while it bootstraps.
        response = yield nodes[0].query_contact(None, address, b"find_node", {b"target": nodes[0].node_id})
        code = yield server.terminate()
        self.assertEqual(code, 0, server.stderr)
        with open(state) as f:
            saved = json.load(f)
        self.assertEqual(saved["node_id"], response.sender_id.hex())
        self.assertTrue(len(saved["contacts"]) >= 1, saved)

    @defer.inlineCallbacks
    def test_a_restart_with_its_state_file_rejoins_without_any_bootstrap_address(self):
        state = self.state_path()
        seed = self.spawn("-p", "0", "--host", "127.0.13.1")
        seed_address = yield seed.started
        nodes = yield self.join_nodes(6, seed_address, first_index=1300)
        first_run = self.spawn("-p", "0", "--host", "127.0.13.2", "-b", "%s:%d" % seed_address, "--state", state)
        yield first_run.started
        yield self.wait_for(first_run, b"joined:")
        self.assertEqual((yield first_run.terminate()), 0)
        with open(state) as f:
            saved = json.load(f)
        # The bootstrap server goes away: only the saved contacts can bring it back.
        yield seed.terminate()
        second_run = self.spawn("-p", "0", "--host", "127.0.13.3", "--state", state)
        address = yield second_run.started
        yield self.wait_for(second_run, b"joined:")
        response = yield nodes[0].query_contact(None, address, b"find_node", {b"target": nodes[0].node_id})
        self.assertEqual(response.sender_id.hex(), saved["node_id"], "the node id did not survive the restart")
        known = {node_id for node_id, _ in krpc.decode_nodes(response.values[b"nodes"])}
        self.assertTrue(known & {n.node_id for n in nodes}, "its routing table was not restored")
        # And the swarm finds it at its new address.
        found = yield nodes[-1].find_node(response.sender_id)
        self.assertEqual((found[0].node_id, found[0].address), (response.sender_id, address))

    @defer.inlineCallbacks
    def wait_for(self, server, text, timeout=15):
        """Wait for `text` in the server's log (stderr)."""
        waited = 0.0
        while text not in server.stderr:
            if waited > timeout or server.exit_code is not None:
                self.fail(f"{text!r} never logged: {server.stderr[-800:]!r}")
            yield task.deferLater(reactor, 0.05, lambda: None)
            waited += 0.05
