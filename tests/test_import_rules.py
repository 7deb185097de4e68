"""The layering, checked on every module's source with `ast` (nothing is imported):

- `kademlia` (the DHT) knows nothing about chat: it never imports `kadchat`;
- the chat core (`kadchat` outside `kadchat.ui`) never imports `kadchat.ui`;
- nothing imports an entry script (`client_node`, `dedicated_server`, `demo`);
- `config` is read only by the entry scripts, the benchmarks (programs of their
  own that start clients) and the tests.

Relative imports are resolved, and `importlib.import_module("...")` /
`__import__("...")` with a literal name count as imports.
"""

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENTRY_SCRIPTS = ("client_node", "dedicated_server", "demo")


def within(name, package):
    """`name` is `package` or one of its submodules."""
    return name == package or name.startswith(package + ".")


RULES = [
    # (what the rule says, applies to the importing module, forbidden imported name)
    ("the DHT never imports the chat layer",
     lambda module: within(module, "kademlia"), lambda name: within(name, "kadchat")),
    ("the chat core never imports the UIs",
     lambda module: within(module, "kadchat") and not within(module, "kadchat.ui"),
     lambda name: within(name, "kadchat.ui")),
    ("nothing imports an entry script",
     lambda module: True, lambda name: any(within(name, script) for script in ENTRY_SCRIPTS)),
    ("only entry scripts, benchmarks and tests import config",
     lambda module: module not in ENTRY_SCRIPTS and not within(module, "tests") and not within(module, "bench"),
     lambda name: within(name, "config")),
]


def module_name(path):
    """`kadchat/nat/traversal.py` -> `kadchat.nat.traversal`; a package's `__init__.py` is the package."""
    parts = list(Path(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(source, module, is_package=False):
    """(line, absolute module name) for each import in `source`, the code of `module`."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # `from ..x import y`: x in the package `level - 1` above ours
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found.append((node.lineno, base))
            # `from kadchat import ui` imports the module kadchat.ui
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif (isinstance(node, ast.Call) and _called_name(node.func) in ("import_module", "__import__")
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def _called_name(func):
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def violations(source, module, is_package=False):
    """One `line: module imports name (rule)` message per broken rule."""
    return [
        f"{line}: {module} imports {name} ({rule})"
        for line, name in imported_names(source, module, is_package)
        for rule, applies, forbidden in RULES
        if applies(module) and forbidden(name)
    ]


def sources():
    """Every Python file of the project, relative to ROOT (hidden folders and caches left out)."""
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith(".") and d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                yield Path(directory, name).relative_to(ROOT)


def _params():
    return [pytest.param(path, id=str(path)) for path in sources()]


def test_the_scan_sees_the_packages_the_entry_scripts_and_the_tests():
    names = {module_name(path) for path in sources()}
    assert {"kademlia.node", "kadchat.service", "kadchat.ui.console", "config", *ENTRY_SCRIPTS,
            "tests.test_import_rules"} <= names


@pytest.mark.parametrize("path", _params())
def test_module_keeps_the_import_rules(path):
    source = (ROOT / path).read_text(encoding="utf-8")
    assert violations(source, module_name(path), path.name == "__init__.py") == []


# -- the rules catch what they are meant to catch -----------------------------------

@pytest.mark.parametrize("module, source", [
    ("kademlia.node", "import kadchat.files"),
    ("kademlia.node", "from kadchat.errors import UserError"),
    ("kademlia.routing", "def f():\n    from kadchat import wire\n"),
    ("kadchat.service", "from kadchat.ui.uitext import presence_text"),
    ("kadchat.service", "from kadchat import ui"),
    ("kadchat.service", "from .ui import console"),
    ("kadchat.nat.traversal", "from ..ui.gui import ChatWindow"),
    ("kadchat.model", "importlib.import_module('kadchat.ui.console')"),
    ("tests.test_demo", "import demo"),
    ("kadchat.ui.console", "from client_node import main"),
    ("bench.report", "__import__('dedicated_server')"),
    ("kadchat.service", "from config import Config"),
    ("kademlia.node", "import config"),
])
def test_a_forbidden_import_is_reported(module, source):
    found = violations(source, module)
    assert found and all(f"{module} imports" in v for v in found)


def test_a_report_names_the_line_the_name_and_the_rule():
    source = "import os\n\ndef later():\n    from kadchat.ui import console\n"
    assert violations(source, "kadchat.history") == [
        "4: kadchat.history imports kadchat.ui (the chat core never imports the UIs)",
        "4: kadchat.history imports kadchat.ui.console (the chat core never imports the UIs)",
    ]


@pytest.mark.parametrize("module, source", [
    ("kadchat.service", "from kademlia.node import DHTNode"),
    ("kadchat.ui.console", "from kadchat.ui.uitext import presence_text"),
    ("kadchat.ui.gui", "from . import window"),  # a package's own submodule
    ("kademlia.node", "import kadchat_extras"),  # a name that merely starts like a package
    ("tests.test_config", "from config import Config"),
    ("client_node", "from config import parse_client_args"),
    ("demo", "import config"),
    ("bench.presence_latency", "from config import parse_client_args"),
    ("tests.test_gui", "from kadchat.ui.gui import ChatWindow"),
])
def test_an_allowed_import_passes(module, source):
    assert violations(source, module, is_package=module == "kadchat.ui.gui") == []
