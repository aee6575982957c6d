"""docs/ci/isatap-smoke.yml, the documented VPC smoke test: valid workflow YAML, the steps the
README promises, and every `fleet` command in it accepted by fleet's own command line as it is."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from meshes import mesh
from ruamel.yaml import YAML

from fleet.cli import build_parser
from fleet.cli.run_tasks import tasks_dirs, tasks_named
from fleet.core.errors import TaskError, UsageError
from fleet.mesh.model import PairState
from fleet.mesh.report import MeshJson

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "docs" / "ci" / "isatap-smoke.yml"


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
    assert commands == ["inventory -i", "aws check", "run setup", "run mesh", "report mesh.json",
                        "report mesh.json"]  # with a baseline, and without one
    mesh = next(c for c in fleet_commands() if c[:2] == ["run", "mesh"])
    for option in ("--json", "--junit", "--heatmap", "--underlay", "--mtu"):
        assert option in mesh
    report = next(c for c in fleet_commands() if c[0] == "report")
    assert "--baseline" in report
    assert "--max-loss-pct" not in report  # a pair broken in the baseline loses 100%: it would fail
    uploaded = next(s for s in steps() if s.get("uses", "").startswith("actions/upload-artifact"))
    assert uploaded["if"] == "always()"
    assert {"mesh.json", "mesh.xml", "mesh.html"} <= set(uploaded["with"]["path"].split())
    installs = [s["run"] for s in steps() if "pip install" in s.get("run", "")]
    assert installs and "fleet-isatap[aws]" in installs[0]


def fleet_rejects(argv: list[str]) -> str | None:
    """What fleet's own command line says of `fleet ARGV...`, parsed as `fleet` parses it and
    not run: None when it is accepted (or asks for --help), else the usage error it prints."""
    said = io.StringIO()
    with contextlib.redirect_stderr(said), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser, _ = build_parser(tasks_named(argv), tasks_dirs(argv))
            parser.parse_args(argv)
        except SystemExit as exc:  # argparse's way of saying an option or command does not exist
            return None if exc.code == 0 else said.getvalue() or f"exit {exc.code}"
        except (UsageError, TaskError) as exc:  # a task that cannot be loaded, as main says it
            return f"fleet: error: {exc}\n"
    return None


@pytest.mark.parametrize("argv", fleet_commands(), ids=lambda argv: " ".join(argv[:2]))
def test_every_fleet_command_in_the_recipe_parses(argv):
    said = fleet_rejects(argv)
    assert said is None, f"fleet {' '.join(argv)}: rejected by fleet's command line: {said}"


# --- the job's result when the mesh fails: GitHub's step rules, and the gate's script run for real

def step_named(word: str) -> dict:
    return next(s for s in steps() if word in s.get("name", ""))


def condition(expression: str, before: list[tuple[str | None, str, str]]) -> bool:
    """A step's `if:` as GitHub evaluates it, for the functions and operators the recipe may use:
    success(), failure(), always(), cancelled(), steps.<id>.outcome/conclusion, ==, !=, !, &&, ||.
    `before`: (id, outcome, conclusion) of the steps that came first (the run is not cancelled)."""
    text = expression.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    failed = any(conclusion == "failure" for _, _, conclusion in before)
    values = {"success()": not failed, "failure()": failed, "always()": True, "cancelled()": False}
    for step_id, outcome, conclusion in before:
        values[f"steps.{step_id}.outcome"] = outcome
        values[f"steps.{step_id}.conclusion"] = conclusion
    python = re.sub(r"steps\.[\w-]+\.(outcome|conclusion)|\w+\(\)",
                    lambda m: repr(values[m.group(0)]), text)
    python = python.replace("&&", " and ").replace("||", " or ")
    python = re.sub(r"!(?!=)", " not ", python)
    return bool(eval(python, {"__builtins__": {}}))  # noqa: S307 (our own recipe's expression)


def job_result(outcomes: dict[str, str]) -> tuple[str, list[str]]:
    """Run the steps by GitHub's rules: each step's outcome is `outcomes[name]` (default
    success); a step whose `if` is false is skipped; continue-on-error turns a failed outcome
    into a successful conclusion. The job fails when a conclusion is a failure."""
    before: list[tuple[str | None, str, str]] = []
    ran = []
    for step in steps():
        if not condition(step.get("if", "success()"), before):
            before.append((step.get("id"), "skipped", "skipped"))
            continue
        ran.append(step.get("name", step.get("uses", "")))
        outcome = outcomes.get(step.get("name", ""), "success")
        conclusion = "success" if step.get("continue-on-error") is True else outcome
        before.append((step.get("id"), outcome, conclusion))
    failed = any(conclusion == "failure" for _, _, conclusion in before)
    return ("failure" if failed else "success"), ran


def test_the_gate_runs_after_a_failing_mesh_and_the_job_is_the_gates():
    mesh_step, gate = step_named("Measure the mesh")["name"], step_named("Gate")["name"]
    result, ran = job_result({mesh_step: "failure"})
    assert gate in ran and result == "success"  # the mesh failed; the gate passed: green
    result, ran = job_result({mesh_step: "failure", gate: "failure"})
    assert gate in ran and result == "failure"
    result, ran = job_result({mesh_step: "success", gate: "failure"})
    assert result == "failure"
    setup = step_named("Set up")["name"]
    result, ran = job_result({setup: "failure"})  # no mesh, nothing to gate; the job is red
    assert gate not in ran and result == "failure"
    assert "Keep the reports" in ran


def run_gate(tmp_path: Path, current, baseline=None) -> subprocess.CompletedProcess[str]:
    """The gate step's own script, run by bash in a checkout-like directory, with `fleet` on
    PATH running this tree's fleet."""
    work = tmp_path / "checkout"
    (work / "fleet").mkdir(parents=True)
    if current is not None:
        (work / "mesh.json").write_text(json.dumps(MeshJson(current).as_dict()))
    if baseline is not None:
        (work / "fleet" / "baseline.json").write_text(json.dumps(MeshJson(baseline).as_dict()))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "fleet"
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m fleet \"$@\"\n")
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    return subprocess.run(["bash", "-e", "-c", step_named("Gate")["run"]], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)


NAMES = ["h1", "h2", "h3"]
BROKEN = {("h1", "h2"): {"state": PairState.UNREACHABLE}}


def test_a_pair_broken_in_the_baseline_already_does_not_fail_the_gate_and_a_new_one_does(tmp_path):
    done = run_gate(tmp_path / "same", mesh(NAMES, BROKEN), mesh(NAMES, BROKEN))
    assert done.returncode == 0, done.stdout + done.stderr
    worse = {**BROKEN, ("h3", "h1"): {"state": PairState.UNREACHABLE}}
    done = run_gate(tmp_path / "worse", mesh(NAMES, worse), mesh(NAMES, BROKEN))
    assert done.returncode == 1 and "h3 -> h1" in done.stdout


def test_without_a_baseline_the_gate_is_the_meshs_own_verdict_and_no_mesh_is_an_error(tmp_path):
    assert run_gate(tmp_path / "ok", mesh(NAMES)).returncode == 0
    assert run_gate(tmp_path / "broken", mesh(NAMES, BROKEN)).returncode == 1
    done = run_gate(tmp_path / "none", None, mesh(NAMES))
    assert done.returncode == 2 and "mesh.json" in done.stderr


# --- reaching the instances from a hosted runner: a bastion, and host keys for replaced instances

EXAMPLE_INVENTORY = REPO / "docs" / "ci" / "aws_ec2.yaml"


def test_the_recipes_inventory_reaches_private_addresses_through_a_bastion():
    from fleet.aws.ec2_inventory import Instance, inventory_files, parse_source
    from fleet.jumps import parse_jumps

    document = YAML(typ="safe").load(EXAMPLE_INVENTORY.read_text())
    source = parse_source(EXAMPLE_INVENTORY, document)
    instance = Instance("i-0abc", "eu-west-1", "vpc-1", "subnet-1", (), "10.1.1.5", "203.0.113.9",
                        None, {"Name": "node1", "Role": "isatap"})
    (name, host), = inventory_files(source, [instance]).hosts.items()
    assert (name, host["hostname"], host["data"]["ipv4"]) == ("node1", "10.1.1.5", "10.1.1.5")
    extras = source.defaults["connection_options"]["asyncssh"]["extras"]
    (hop,) = parse_jumps(extras["tunnel"])
    assert hop.host == "bastion.example.net"
    assert extras["known_hosts"] == "~/.ssh/fleet_known_hosts"


def test_setup_and_mesh_accept_new_keys_into_a_known_hosts_file_of_the_runs_own():
    for command in fleet_commands():
        if command[0] == "run":
            assert command[command.index("--host-key-checking") + 1] == "accept-new", command
        assert "--no-host-key-checking" not in command
    script = step_named("known hosts")["run"]
    assert "fleet_known_hosts" in script and "~/.ssh/known_hosts" not in script


def test_the_known_hosts_step_leaves_only_the_bastions_key(tmp_path):
    """The step's own script, run by bash with a fresh HOME: the file it makes holds the pinned
    bastion line and nothing else, readable by its owner only; the key file too."""
    home = tmp_path / "home"
    home.mkdir()
    line = "bastion.example.net ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExample"
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "SSH_PRIVATE_KEY": "-----BEGIN KEY-----",
           "BASTION_KNOWN_HOSTS": line}
    done = subprocess.run(["bash", "-e", "-c", step_named("known hosts")["run"]], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    known = home / ".ssh" / "fleet_known_hosts"
    assert known.read_text() == line + "\n"
    assert known.stat().st_mode & 0o777 == 0o600
    assert (home / ".ssh" / "id_ed25519").stat().st_mode & 0o777 == 0o600
