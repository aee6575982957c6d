"""The arrows between packages: the generic core imports no feature, and loading the command line
or one task loads no other feature's code."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "fleet" / "core"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_core_imports_nothing_of_fleet_outside_the_core():
    offenders = {}
    for path in sorted(CORE.rglob("*.py")):
        outside = {m for m in imported_modules(path)
                   if m == "fleet" or (m.startswith("fleet.") and not m.startswith("fleet.core"))}
        if outside:
            offenders[str(path.relative_to(REPO))] = sorted(outside)
    assert not offenders, offenders
    assert len(list(CORE.glob("*.py"))) >= 8  # the scan saw the core's modules


def test_no_module_imports_the_private_names_of_another():
    """What two modules share is public in one of them (fleet watch once borrowed fleet run's
    _files_read and _warn)."""
    offenders = []
    for path in sorted((REPO / "fleet").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fleet"):
                offenders += [f"{path.relative_to(REPO)}: {node.module}.{alias.name}"
                              for alias in node.names
                              if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert not offenders, offenders


def loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          timeout=60, check=True)
    return set(done.stdout.split())


def test_the_command_line_loads_no_feature_and_no_ssh_library_until_a_run_needs_them():
    loaded = loaded_after("import fleet.cli")
    assert "fleet.cli" in loaded
    for feature in ("fleet.mesh", "fleet.tasks.setup", "fleet.lab", "asyncssh",
                    "fleet.ssh.transport", "fleet.formats", "rich"):
        assert feature not in loaded, feature
    assert "fleet.cli.display" in loaded  # the display module is loaded, rich only when drawing


def test_loading_one_task_loads_no_other_feature():
    loaded = loaded_after("from fleet.catalog import task\ntask('teardown')")
    assert "fleet.tasks.teardown" in loaded
    assert not {m for m in loaded if m.startswith("fleet.mesh")}
    loaded = loaded_after("from fleet.catalog import task\ntask('mesh')")
    assert "fleet.tasks.mesh" in loaded
    assert "fleet.tasks.setup" not in loaded and "fleet.tasks.teardown" not in loaded


def test_only_fleet_aws_imports_boto3_and_only_when_used():
    """boto3 is an optional extra: no module outside fleet/aws names it, and no fleet/aws module
    imports it at import time (only inside the functions that call AWS)."""
    def names_aws(module: str) -> bool:
        return module.split(".")[0] in ("boto3", "botocore")

    outside = {}
    for path in sorted((REPO / "fleet").rglob("*.py")):
        if path.is_relative_to(REPO / "fleet" / "aws"):
            continue
        found = sorted(m for m in imported_modules(path) if names_aws(m))
        if found:
            outside[str(path.relative_to(REPO))] = found
    assert not outside, outside

    at_import = {}
    for path in sorted((REPO / "fleet" / "aws").glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        found = sorted({alias.name for node in top if isinstance(node, ast.Import) for alias in node.names}
                       | {node.module for node in top if isinstance(node, ast.ImportFrom) and node.module})
        if any(names_aws(m) for m in found):
            at_import[str(path.relative_to(REPO))] = found
    assert not at_import, at_import


def test_only_fleet_ssh_imports_asyncssh():
    """asyncssh is the SSH edge: the modules of fleet/ssh map its errors to fleet's, and no module
    outside fleet/ssh names it (the others see the Transport and Session protocols)."""
    outside = {}
    for path in sorted((REPO / "fleet").rglob("*.py")):
        if path.is_relative_to(REPO / "fleet" / "ssh"):
            continue
        found = sorted(m for m in imported_modules(path) if m.split(".")[0] == "asyncssh")
        if found:
            outside[str(path.relative_to(REPO))] = found
    assert not outside, outside
    assert "asyncssh" in imported_modules(REPO / "fleet" / "ssh" / "transport.py")


def test_loading_an_inventory_or_the_command_line_loads_no_boto3():
    for statement in ("import fleet.cli", "import fleet.inventory", "import fleet.aws.ec2_inventory",
                      "import fleet.nornir.inventory"):
        loaded = loaded_after(statement)
        assert not {m for m in loaded if m.split(".")[0] in ("boto3", "botocore")}, statement


def test_the_library_api_names_no_feature_and_no_task():
    """fleet.api runs whatever tasks it is given: a task's own hooks (prepare, warnings, report)
    carry what is particular to it, such as setup's AWS protocol 41 check."""
    imported = imported_modules(REPO / "fleet" / "api.py")
    features = ("fleet.aws", "fleet.tunnel", "fleet.mesh", "fleet.tasks", "fleet.lab")
    assert not {m for m in imported if m.startswith(features)}, imported
    loaded = loaded_after("import fleet.api")  # (the inventory's address maths is fleet.tunnel's)
    assert not {m for m in loaded if m.startswith(("fleet.aws", "fleet.tasks", "fleet.mesh"))}
