"""The JSON report's schema (docs/schema/report.schema.json), checked against what fleet really
writes: a real run over in-process SSH hosts, every fault of the verdict's catalogue, the golden
report, and `fleet report --json -`. The schema lists every field (no others allowed), so a field
added to the writer without the schema fails here."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from conftest import REPO
from test_verdict import FAULTS

from fleet import cli
from fleet.mesh.report import MeshJson

SCHEMA = json.loads((REPO / "docs" / "schema" / "report.schema.json").read_text())
GOLDEN = REPO / "tests" / "golden" / "mesh_report.json"


def valid(document: object) -> None:
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_the_schema_is_a_valid_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_a_real_several_task_run_matches_the_schema(inprocess_fleet):
    inprocess_fleet.add_host("h1", "172.31.0.11")
    inprocess_fleet.add_host("h2", "172.31.0.12")
    inprocess_fleet.add_unreachable("h3", "172.31.0.13")
    done = inprocess_fleet.run("setup", "mesh", "--underlay", "--mtu")
    assert [d["task"] for d in done.report["tasks"]] == ["setup", "mesh"], done.err
    valid(done.report)
    assert done.report["tasks"][1]["pairs"][0]["underlay"] is not None


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_fault_of_the_catalogue_matches_the_schema(fault):
    make, _ = FAULTS[fault]
    valid(MeshJson(make(), interrupted=False, elapsed_s=1.0).as_dict())


def test_the_golden_report_and_fleet_report_json_match_the_schema(capsys):
    valid(json.loads(GOLDEN.read_text()))
    assert cli.main(["report", str(GOLDEN), "--json", "-"]) == 1
    valid(json.loads(capsys.readouterr().out))


@pytest.mark.parametrize("change", ["extra field", "unknown state", "verdict as text"])
def test_a_report_that_differs_from_what_fleet_writes_does_not_match(change):
    document = copy.deepcopy(json.loads(GOLDEN.read_text()))
    if change == "extra field":
        document["pairs"][0]["jitter_ms"] = 1.0
    elif change == "unknown state":
        document["pairs"][0]["state"] = "flaky"
    else:
        document["verdict"] = "NOT OK"
    with pytest.raises(jsonschema.ValidationError):
        valid(document)
