"""Where tasks come from: the built-ins by the entry point group `fleet.tasks` (fleet's own and
any other distribution's), the repository's tasks/ folder when fleet runs from its source tree,
and ./tasks or --tasks-dir through the same loader."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO

BUILTINS = ("setup", "mesh", "teardown")


def fleet(*argv, cwd, pythonpath=str(REPO)):
    return subprocess.run([sys.executable, "-m", "fleet", *argv], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": pythonpath}, timeout=60)


def listed(stdout: str) -> dict[str, str]:
    return {line.split()[0]: line.rsplit("[", 1)[1].rstrip("]") for line in stdout.splitlines()}


def test_from_the_source_tree_the_builtins_are_the_tasks_folder():
    loaded = subprocess.run(
        [sys.executable, "-c", "from fleet.catalog import builtin_tasks, task\n"
         "print(sorted(builtin_tasks().items()))\nprint(task('mesh').module.__name__)"],
        capture_output=True, text=True, cwd=REPO / "inventory", env={**os.environ, "PYTHONPATH":
                                                                     str(REPO)}, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    found, module = loaded.stdout.splitlines()
    for name in BUILTINS:
        assert f"('{name}', 'fleet.tasks.{name}')" in found
    assert module == "fleet.tasks.mesh"


def test_at_the_repository_root_tasks_is_the_builtins_own_folder_not_a_shadow():
    for argv in (["tasks"], ["tasks", "--tasks-dir", "tasks"]):
        done = fleet(*argv, cwd=REPO)
        assert done.returncode == 0, done.stderr
        assert "ignored" not in done.stderr and "overrides" not in done.stderr, done.stderr
        tasks = listed(done.stdout)
        for name in BUILTINS:
            assert tasks[name] == str(REPO / "tasks" / f"{name}.py")
    once = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom fleet.catalog import task\n"
         "for name in ('setup', 'mesh', 'teardown'): task(name)\n"
         "print(' '.join(sorted(m for m in sys.modules if m.startswith('fleet.') and 'tasks' in m)))"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60)
    assert once.returncode == 0, once.stderr
    assert once.stdout.split() == ["fleet.tasks", "fleet.tasks.mesh", "fleet.tasks.setup",
                                   "fleet.tasks.teardown"]  # once each, no fleet._loaded_tasks


def test_a_tasks_file_named_as_a_builtin_elsewhere_is_still_refused(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "setup.py").write_text('"""Not fleet\'s."""\nasync def run(host):\n'
                                                 "    return host.result()\n")
    done = fleet("tasks", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "setup.py ignored: 'setup' is a built-in task" in done.stderr
    assert listed(done.stdout)["setup"] == str(REPO / "tasks" / "setup.py")


def test_another_distribution_ships_tasks_by_the_same_entry_point_group(tmp_path):
    site = tmp_path / "site"
    (site / "acme_tasks").mkdir(parents=True)
    (site / "acme_tasks" / "__init__.py").write_text("")
    (site / "acme_tasks" / "hello.py").write_text('"""Say hello from acme."""\n'
                                                  "async def run(host):\n"
                                                  "    return host.result({'summary': 'hi'})\n")
    info = site / "acme_tasks-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-tasks\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[fleet.tasks]\nhello = acme_tasks.hello\n")
    done = fleet("tasks", cwd=tmp_path, pythonpath=f"{REPO}{os.pathsep}{site}")
    assert done.returncode == 0, done.stderr
    tasks = listed(done.stdout)
    assert tasks["hello"] == str(site / "acme_tasks" / "hello.py")
    assert "Say hello from acme." in done.stdout
    for name in BUILTINS:  # fleet's own are still found (from the source tree here)
        assert tasks[name] == str(REPO / "tasks" / f"{name}.py")
