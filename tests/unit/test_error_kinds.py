"""Error kinds are registered on their classes: one class per kind, every kind rebuilt as its own
class (through JSON and through the persistent-connection socket), and the table of kinds in
docs/failure-semantics.md is the registry's."""

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fleet.error_kinds
from fleet.core import errors
from fleet.core.errors import HOST_ERROR_KINDS, HostError, host_error_from_json
from fleet.ssh.persist import client, daemon, wire
from fleet.tunnel.errors import ForeignRouteError, ForeignTunnelError

REPO = Path(__file__).resolve().parents[2]

# a value for every field a HostError class may carry, each unlike its default
FIELD_VALUES = {"via": "bastion:22", "command": "ip link show", "exit_status": 2,
                "stdout": "out\n", "stderr": "ip: no\n"}


def every_kind():
    return sorted(HOST_ERROR_KINDS.items())


def sample(cls):
    return cls("h1", f"a {cls.kind} failure", **{name: FIELD_VALUES[name] for name in cls.fields})


def same(rebuilt, original):
    assert type(rebuilt) is type(original)
    assert (rebuilt.host, rebuilt.reason, str(rebuilt)) == (original.host, original.reason, str(original))
    for name in original.fields:
        assert getattr(rebuilt, name) == getattr(original, name), name


def test_the_registry_holds_every_kind_of_the_core_and_the_features_and_each_once():
    kinds = dict(HOST_ERROR_KINDS)
    assert {"error", "unreachable", "auth", "host-key-unknown", "host-key-changed", "ssh-setup",
            "connection-lost", "command", "timeout", "host-timeout", "preflight", "privilege",
            "interrupted", "foreign-tunnel", "foreign-route"} <= set(kinds)
    assert kinds["foreign-tunnel"] is ForeignTunnelError and kinds["foreign-route"] is ForeignRouteError
    assert kinds["timeout"] is errors.CommandTimeoutError and kinds["host-timeout"] is errors.HostTimeoutError
    assert len(set(kinds.values())) == len(kinds)
    defined = [cls for cls in vars(errors).values()
               if isinstance(cls, type) and issubclass(cls, HostError)]
    assert all(kinds[cls.kind] is cls for cls in defined)  # no core class left out


def test_the_core_defines_no_features_error():
    assert not hasattr(errors, "ForeignTunnelError") and not hasattr(errors, "ForeignRouteError")
    assert {cls.__module__ for cls in HOST_ERROR_KINDS.values()} == {"fleet.core.errors",
                                                                    "fleet.tunnel.errors"}


@pytest.mark.parametrize(("kind", "cls"), every_kind())
def test_every_kind_round_trips_through_json(kind, cls):
    original = sample(cls)
    assert original.kind == kind
    text = json.dumps(original.to_json())
    same(host_error_from_json(json.loads(text)), original)


@pytest.mark.parametrize(("kind", "cls"), every_kind())
def test_every_kind_round_trips_through_the_persist_wire(kind, cls):
    original = sample(cls)
    reply = wire.decode(wire.encode({"id": 7, **daemon._failure(original)}))
    assert reply["kind"] == kind and reply["ok"] is False
    same(client._failure("h1", reply, usual="command"), original)


def test_a_kind_the_client_does_not_know_is_rebuilt_as_the_usual_one():
    reply = wire.decode(wire.encode({"ok": False, "kind": "usage", "error": "bad request"}))
    rebuilt = client._failure("h1", reply, usual=errors.ConnectError.kind)
    assert type(rebuilt) is errors.ConnectError and rebuilt.reason == "bad request"


def test_a_second_class_with_a_kind_already_taken_fails_when_it_is_defined():
    before = dict(HOST_ERROR_KINDS)
    with pytest.raises(TypeError, match="'timeout'.*already.*CommandTimeoutError"):
        class AnotherTimeout(HostError):
            kind = "timeout"
    with pytest.raises(TypeError, match="foreign-tunnel"):
        class AnotherForeign(errors.PreflightError):
            kind = "foreign-tunnel"
    assert dict(HOST_ERROR_KINDS) == before


def test_a_subclass_without_a_kind_of_its_own_shares_its_parents_and_is_not_registered():
    class TaskOwnFailure(errors.CommandError):
        pass

    assert TaskOwnFailure("h1", "x").kind == "command"
    assert HOST_ERROR_KINDS["command"] is errors.CommandError


def test_a_duplicate_kind_in_a_module_fails_its_import(tmp_path, monkeypatch):
    (tmp_path / "twice_kinds.py").write_text(
        "from fleet.core.errors import HostError\n"
        "class A(HostError):\n    kind = 'twice-kind'\n"
        "class B(HostError):\n    kind = 'twice-kind'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(TypeError, match="'twice-kind'.*already"):
            importlib.import_module("twice_kinds")
    finally:
        errors._KINDS.pop("twice-kind", None)  # A's, registered before B failed
        sys.modules.pop("twice_kinds", None)


def feature_error_modules():
    """Every fleet/<feature>/errors.py that defines a HostError (by its class bases, read)."""
    found = set()
    for path in (REPO / "fleet").rglob("errors.py"):
        if path.parent.name == "core":
            continue
        tree = ast.parse(path.read_text())
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        imported = importlib.import_module(module)
        if any(isinstance(node, ast.ClassDef) and issubclass(getattr(imported, node.name), HostError)
               for node in tree.body):
            found.add(module)
    return found


def test_every_feature_errors_module_is_loaded_where_kinds_are_rebuilt():
    assert feature_error_modules() == set(fleet.error_kinds.FEATURE_ERROR_MODULES)
    code = ("import fleet.ssh.persist.client as c\n"
            "e = c._failure('h', {'ok': False, 'kind': 'foreign-route', 'error': 'x'}, usual='command')\n"
            "print(type(e).__module__, type(e).__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          timeout=60, check=True)
    assert done.stdout.split() == ["fleet.tunnel.errors", "ForeignRouteError"]


def test_the_documented_table_of_kinds_is_the_registry():
    page = (REPO / "docs" / "failure-semantics.md").read_text()
    section = page.split("\n## Error kinds\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z-]+)` \|", section, flags=re.M)
    assert len(listed) == len(set(listed))
    assert set(listed) == set(HOST_ERROR_KINDS)
