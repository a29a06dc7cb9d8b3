"""The server's layering (docs/ARCHITECTURE.md), read from the source with ``ast``: imports
point one way, no import cycles, no module reaches into another's private names, and the
media worker imports nothing of the server."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Each layer may import itself and the layers listed; the composition root (app, deps,
# __main__, shutdown, metrics, logs) may import anything.
LAYERS = {
    "kernel": set(),
    "event_loop": set(),  # which asyncio loop the process runs (config validates EVENT_LOOP by its names)
    "heap": set(),  # the garbage collector's pauses (the served process freezes its startup heap)
    "config": {"kernel", "event_loop"},
    "storage": {"kernel", "config"},
    "db": {"kernel", "config"},
    "realtime": {"kernel", "config", "db"},
    "http": {"kernel", "config"},
    "rooms": {"kernel", "config", "db", "realtime", "http"},
    "chat": {"kernel", "config", "db", "realtime", "http", "rooms"},
    "accounts": {"kernel", "config", "db", "realtime", "http", "rooms", "storage"},  # avatars are stored blobs
    "files": {"kernel", "config", "db", "realtime", "http", "rooms", "storage"},
    "sfu": {"kernel", "config", "db", "realtime"},
    "calls": {"kernel", "config", "db", "realtime", "http", "rooms", "sfu"},
    "polls": {"kernel", "config", "db", "realtime", "http", "rooms"},
    "recordings": {"kernel", "config", "db", "realtime", "http", "rooms", "calls", "files", "storage", "polls"},
    "lti": {"kernel", "config", "db", "http", "accounts", "rooms"},
    "provision": {"kernel", "config", "db", "http", "accounts", "rooms"},  # LMS back ends (issue 17.6)
}
ROOT_MODULES = {"app", "deps", "__main__", "shutdown", "metrics", "logs", "__init__"}
# Modules that reach into a pinned third-party library's internals, the one place each.
THIRD_PARTY_INTERNALS = {
    "media_worker/live/passthrough.py",  # aiortc's receiver: encoded frames without decoding (pinned)
}
# Private names of third-party objects read in exactly one place, each with its reason there.
ALLOWED_PRIVATE = {
    ("server/realtime/tornado_stream.py", "stream._total_write_index"),
    ("server/realtime/tornado_stream.py", "stream._total_write_done_index"),
    ("server/realtime/tornado_stream.py", "connection._expected_content_remaining"),  # sendfile bodies
    ("server/__main__.py", "os._exit"),
    ("server/http/base.py", "super()._handle_request_exception"),
    ("server/files/handlers.py", "super()._handle_request_exception"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every ``server``/``media_worker`` module this file imports, at any depth of the file."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # ``from pkg import sub`` depends on the submodule; ``from mod import name`` on mod
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in KNOWN else base for a in node.names}
    return {m for m in out if m.split(".")[0] in ("server", "media_worker")}


def source_files(top: str) -> list[Path]:
    return sorted(p for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts)


def known_modules() -> set[str]:
    return {module_name(p) for p in source_files("server") + source_files("media_worker")}


KNOWN = known_modules()


def graph(top: str) -> dict[str, set[str]]:
    """module → the modules of the project it imports (names resolved to real modules)."""
    known = KNOWN
    out = {}
    for p in source_files(top):
        targets = set()
        for m in imports_of(p):
            while m and m not in known:  # ``from server.x import name``: the module is server.x
                m = m.rpartition(".")[0]
            if m:
                targets.add(m)
        out[module_name(p)] = targets - {module_name(p)}
    return out


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_server_import_follows_the_layering():
    """A module imports only its own layer and those under it (kernel ← db ← realtime ← rooms
    ← {chat, calls, files, accounts}; calls ← recordings)."""
    wrong = []
    for module, targets in graph("server").items():
        own = layer(module)
        if own in ROOT_MODULES:
            continue
        assert own in LAYERS, f"{module}: a new top-level package needs a place in LAYERS"
        for target in targets:
            dep = layer(target)
            if dep != own and dep not in LAYERS[own] and target != "server":
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


@pytest.mark.parametrize("top", ["server", "media_worker"])
def test_no_import_cycles(top):
    """No module imports itself through others (a cycle), directly or not."""
    g = graph(top)
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]) if nxt in path else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_module_reaches_into_another_modules_private_names():
    """``x._name`` is only ever ``self._name``/``cls._name`` (and the listed third-party reads),
    and nothing imports a ``_private`` name from another module."""
    found = []
    for p in source_files("server") + source_files("media_worker"):
        rel = p.relative_to(ROOT).as_posix()
        if rel in THIRD_PARTY_INTERNALS:
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    continue
                if (rel, ast.unparse(node)) not in ALLOWED_PRIVATE:
                    found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("server", "media_worker")):
                found += [f"{rel}:{node.lineno}: imports {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert not found, "private names used across modules:\n" + "\n".join(found)


def test_the_media_worker_imports_nothing_of_the_server():
    """The worker runs on another machine: it talks to the server only through /ws and HTTP."""
    leaks = [f"{m} imports {t}" for m, ts in graph("media_worker").items() for t in ts if t.startswith("server")]
    assert not leaks, "\n".join(leaks)


def test_the_checks_see_a_violation():
    """The graph really resolves imports: kernel is imported by features, and features are not
    imported by the kernel (so an empty graph cannot pass the tests above by accident)."""
    g = graph("server")
    assert "server.kernel.errors" in g["server.chat.messages"]
    assert any(t.startswith("server.rooms") for t in g["server.chat.messages"])
    assert "chat" not in LAYERS["rooms"] and "calls" not in LAYERS["chat"]
