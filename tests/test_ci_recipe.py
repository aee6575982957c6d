"""docs/ci/isatap-smoke.yml, the documented VPC smoke test: valid workflow YAML, the steps the
README promises, and every `fleet` command in it accepted by fleet's own command line as it is."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from fleet.cli import _tasks_named, build_parser

RECIPE = Path(__file__).resolve().parent.parent / "docs" / "ci" / "isatap-smoke.yml"


def workflow() -> dict:
    return YAML(typ="safe").load(RECIPE.read_text())  # YAML 1.2: `on` stays a string


def steps() -> list[dict]:
    (job,) = workflow()["jobs"].values()
    return job["steps"]


def fleet_commands() -> list[list[str]]:
    """Every `fleet ...` line of every run step, with the workflow's env variables filled in."""
    flow = workflow()
    (job,) = flow["jobs"].values()
    env = {**flow.get("env", {}), **job.get("env", {})}
    found = []
    for step in job["steps"]:
        for line in step.get("run", "").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["fleet"]:
                found.append([w.replace("$INVENTORY", env["INVENTORY"]) for w in words[1:]])
    return found


def test_the_recipe_is_a_workflow_with_triggers_a_timeout_and_pinned_actions():
    flow = workflow()
    assert set(flow) >= {"name", "on", "jobs"}
    assert "workflow_dispatch" in flow["on"]
    (job,) = flow["jobs"].values()
    assert job["runs-on"] and 0 < job["timeout-minutes"] <= 60
    for step in job["steps"]:
        assert ("uses" in step) != ("run" in step), step
        if "uses" in step:
            assert "@v" in step["uses"], step  # pinned to a major version at least


def test_the_recipe_runs_the_whole_smoke_test_in_order():
    commands = [" ".join(c[:2]) for c in fleet_commands()]
    assert commands == ["inventory -i", "aws check", "run setup", "run mesh", "report mesh.json"]
    mesh = next(c for c in fleet_commands() if c[:2] == ["run", "mesh"])
    for option in ("--json", "--junit", "--heatmap", "--underlay", "--mtu"):
        assert option in mesh
    report = next(c for c in fleet_commands() if c[0] == "report")
    assert "--baseline" in report
    uploaded = next(s for s in steps() if s.get("uses", "").startswith("actions/upload-artifact"))
    assert uploaded["if"] == "always()"
    assert {"mesh.json", "mesh.xml", "mesh.html"} <= set(uploaded["with"]["path"].split())
    installs = [s["run"] for s in steps() if "pip install" in s.get("run", "")]
    assert installs and "fleet-isatap[aws]" in installs[0]


@pytest.mark.parametrize("argv", fleet_commands(), ids=lambda argv: " ".join(argv[:2]))
def test_every_fleet_command_in_the_recipe_parses(argv):
    parser, _ = build_parser(_tasks_named(argv))
    try:
        parser.parse_args(argv)
    except SystemExit as exc:  # argparse's way of saying an option or command does not exist
        pytest.fail(f"fleet {' '.join(argv)}: rejected by fleet's command line (exit {exc.code})")
