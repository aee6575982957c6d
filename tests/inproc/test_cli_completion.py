"""Shell completion (argcomplete) driven as bash's function drives it: `fleet` run with
_ARGCOMPLETE, COMP_LINE and COMP_POINT set, its candidates read from the file named by
_ARGCOMPLETE_STDOUT_FILENAME (instead of fd 8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def candidates(line: str, tmp_path: Path, command: list[str] | None = None) -> list[str]:
    """What `fleet` offers for `line`, the cursor at its end."""
    out = tmp_path / "candidates"
    env = {**os.environ, "PYTHONPATH": str(REPO), "_ARGCOMPLETE": "1", "_ARGCOMPLETE_IFS": "\n",
           "COMP_LINE": line, "COMP_POINT": str(len(line)), "COMP_TYPE": "9",
           "_ARGCOMPLETE_STDOUT_FILENAME": str(out)}
    done = subprocess.run(command or [sys.executable, "-m", "fleet"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "", done.stdout  # nothing ran
    return [word.rstrip(" ") for word in out.read_text().split("\n")]  # one alone ends in a space


@pytest.mark.parametrize("line, offered", [
    ("fleet run me", ["mesh"]),
    ("fleet run mesh --cou", ["--count"]),
    ("fleet run setup te", ["teardown"]),
    ("fleet rep", ["report"]),
    ("fleet report --heatmap-r", ["--heatmap-rtt-ms"]),
])
def test_commands_task_names_and_task_options_complete(tmp_path, line, offered):
    assert candidates(line, tmp_path) == offered


def test_task_options_are_offered_only_for_the_tasks_named(tmp_path):
    both = candidates("fleet run setup mesh --c", tmp_path)
    assert "--count" in both and "--connect-timeout" in both
    assert "--count" not in candidates("fleet run setup --c", tmp_path)


def test_tasks_of_a_tasks_dir_are_offered(tmp_path):
    tasks = tmp_path / "mine"
    tasks.mkdir()
    (tasks / "uptime_check.py").write_text(
        '"""Read the uptime."""\n\ndef run(host, params):\n    return host.run("uptime")\n')
    assert candidates(f"fleet run --tasks-dir {tasks} upt", tmp_path) == ["uptime_check"]
