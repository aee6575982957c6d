"""fleet's Nornir task functions are made from the tasks' own Params (one signature, no copy to
drift), and their Results are plain data that nornir_utils' print_result shows as it is: run
through Nornir's own threaded runner against in-process SSH hosts with stand-ins (no root)."""

from __future__ import annotations

import dataclasses
import inspect
import json

from nornir_utils.plugins.functions import print_result

import fleet.nornir
from fleet.catalog import task as load_task
from fleet.inventory import load_inventory
from fleet.mesh.model import PAIR_FIELDS

NORNIR_FUNCTIONS = {"setup": "setup", "teardown": "teardown", "mesh_probe": "mesh"}


def test_each_nornir_function_takes_exactly_its_tasks_params():
    for function_name, task_name in NORNIR_FUNCTIONS.items():
        function = getattr(fleet.nornir, function_name)
        fields = dataclasses.fields(load_task(task_name).params_class)
        parameters = list(inspect.signature(function).parameters.values())
        assert parameters[0].name == "task"
        own = parameters[1:1 + len(fields)]
        assert [(p.name, p.default) for p in own] == [(f.name, f.default) for f in fields]
        rest = {p.name: p.kind for p in parameters[1 + len(fields):]}
        assert rest.pop("host_key_checking") == rest.pop("limits") == inspect.Parameter.KEYWORD_ONLY
        assert rest == ({} if task_name == "mesh" else
                        {"dry_run": inspect.Parameter.POSITIONAL_OR_KEYWORD})
    names = inspect.signature(fleet.nornir.mesh_probe).parameters
    assert "underlay" in names and "mtu" in names


def test_a_wrong_argument_is_a_type_error_as_for_any_function():
    try:
        fleet.nornir.mesh_probe(None, cuont=2)
    except TypeError as exc:
        assert "cuont" in str(exc)
    else:
        raise AssertionError("no TypeError")


def test_mesh_probe_results_are_plain_data_and_still_make_fleets_matrix(inprocess_fleet, capsys):
    for name, ipv4 in (("h1", "172.31.0.11"), ("h2", "172.31.0.12")):
        inprocess_fleet.add_host(name, ipv4)
    nr = load_inventory(inprocess_fleet.write_inventory()).nornir  # Nornir's ThreadedRunner
    assert inprocess_fleet.cli("run", "setup", "-i", str(inprocess_fleet.inventory),
                               "--no-progress").code == 0
    probes = nr.run(task=fleet.nornir.mesh_probe, count=2, underlay=True, mtu=True)
    assert not probes.failed
    for name, other in (("h1", "h2"), ("h2", "h1")):
        data = probes[name][0].result
        assert json.loads(json.dumps(data)) == data  # plain: dicts, lists, texts, numbers
        (pair,) = data["pairs"]
        assert list(pair) == list(PAIR_FIELDS)
        assert (pair["src"], pair["dst"], pair["state"], pair["sent"]) == (name, other, "ok", 2)
        assert pair["underlay"]["state"] == "ok" and pair["mtu"]["ok"] is True
    capsys.readouterr()
    print_result(probes)
    shown = capsys.readouterr().out
    assert "object at 0x" not in shown and "'state': 'ok'" in shown

    report = fleet.nornir.mesh_report(nr, probes)
    assert report.mesh.summary() == {"hosts": 2, "pairs": 2, "ok": 2, "lossy": 0,
                                     "unreachable": 0, "error": 0}
    assert report.mesh.params.underlay and report.mesh.mtu_counts() == {"ok": 2, "failed": 0,
                                                                        "unknown": 0}
    assert fleet.nornir.mesh_report(nr, probes).mesh.summary() == report.mesh.summary()
    assert probes["h1"][0].result["pairs"]  # the Results are left as they were


def test_setup_and_teardown_results_are_plain_data_that_print_result_shows(inprocess_fleet,
                                                                           capsys):
    inprocess_fleet.add_host("h1", "172.31.0.11")
    nr = load_inventory(inprocess_fleet.write_inventory()).nornir
    for function in (fleet.nornir.setup, fleet.nornir.teardown):
        done = nr.run(task=function, replace=True, dry_run=True)
        data = done["h1"][0].result
        assert not done.failed and json.loads(json.dumps(data)) == data
        capsys.readouterr()
        print_result(done)
        shown = capsys.readouterr().out
        assert "object at 0x" not in shown and "'summary':" in shown
        assert data["summary"].split(";")[0] in shown  # pprint folds long texts: the first part
