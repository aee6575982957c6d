"""Reading saved mesh reports back: the golden report, a written report read back, the mesh of a
several-task run, fields of later versions read past, and bad files refused naming file and field."""

import copy
import json
from pathlib import Path

import pytest
from meshes import mesh

from fleet.core.errors import UsageError
from fleet.mesh.model import HostState, PairState
from fleet.mesh.report import MeshJson, render_mesh
from fleet.mesh.saved import SavedReportError, load_mesh_document, mesh_from_document

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "mesh_report.json"


def golden():
    return json.loads(GOLDEN.read_text())


def write(tmp_path, document, name="saved.json"):
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def test_the_golden_report_is_read_into_the_mesh_it_describes():
    saved = load_mesh_document(GOLDEN)
    m = saved.mesh
    assert [h.name for h in m.hosts] == ["h1", "h2", "h3"]
    assert [h.state for h in m.hosts] == [HostState.OK, HostState.OK, HostState.ERROR]
    assert m.hosts[2].error_kind == "unreachable" and str(m.hosts[0].ipv4) == "172.31.0.11"
    assert m.summary() == {"hosts": 3, "pairs": 6, "ok": 2, "lossy": 1, "unreachable": 1, "error": 2}
    assert m.pair("h2", "h1").loss_pct == 33.3 and m.pair("h1", "h2").rtt_avg_ms == 0.2
    assert m.pair("h3", "h1").error.startswith("source failed: cannot connect")
    assert (m.params.count, m.params.interval, m.params.timeout, m.params.parallel) == (3, 0.2, 1.0, 16)
    assert (saved.interrupted, saved.elapsed, saved.report().exit_code) == (False, 1.5, 1)
    # Written again, it is the golden file, byte for byte apart from the layout.
    assert MeshJson(m, interrupted=False, elapsed_s=1.5).as_dict() == golden()


def test_a_written_report_read_back_has_the_same_pairs_states_and_numbers(tmp_path):
    original = mesh(["a", "b", "c", "d"], {
        ("a", "b"): {"state": PairState.LOSSY, "received": 1, "rtt": 1.25},
        ("b", "c"): {"state": PairState.UNREACHABLE},
        ("d", "a"): {"state": PairState.ERROR, "error": "the probe printed no statistics"},
        ("c", "a"): {"rtt": 12.345}})
    written = MeshJson(original).as_dict()
    saved = load_mesh_document(write(tmp_path, written))
    assert list(saved.mesh.pairs) == list(original.pairs)
    assert saved.mesh.hosts == original.hosts
    assert saved.mesh.pair("c", "a").rtt_avg_ms == 12.345
    assert saved.mesh.pair("a", "b").loss_pct == 66.7
    assert render_mesh(saved.mesh) == render_mesh(original)
    assert (saved.interrupted, saved.elapsed) == (False, None)


def test_pairs_out_of_order_are_put_in_order_so_lookups_work(tmp_path):
    document = golden()
    document["pairs"].reverse()
    m = load_mesh_document(write(tmp_path, document)).mesh
    assert [(p.src, p.dst) for p in m.pairs][:2] == [("h1", "h2"), ("h1", "h3")]
    assert m.pair("h2", "h3").state is PairState.OK


def test_the_mesh_of_a_several_task_run_is_picked(tmp_path):
    document = {"tasks": [{"task": "setup", "hosts": [], "summary": {}}, golden(),
                          {"task": "teardown", "hosts": []}]}
    saved = load_mesh_document(write(tmp_path, document))
    assert saved.mesh.pair_count == 6


def test_an_interrupted_run_keeps_its_exit_code(tmp_path):
    document = golden() | {"interrupted": True}
    assert load_mesh_document(write(tmp_path, document)).report().exit_code == 130


def test_fields_of_later_versions_are_read_past_and_optional_ones_may_be_missing(tmp_path):
    document = golden()
    document |= {"verdict": "degraded", "diagnosis": [{"kind": "mtu"}], "summary": {"rtt_ms": {}}}
    for pair in document["pairs"]:
        pair |= {"rtt_p50_ms": 0.2, "rtt_p90_ms": 0.3, "rtt_p99_ms": None, "underlay": None,
                 "mtu": {"path": 1480}}
        del pair["loss_pct"]
    for h in document["hosts"]:
        del h["notes"], h["error_kind"], h["groups"]
    del document["coverage"], document["elapsed_s"], document["interrupted"]
    saved = load_mesh_document(write(tmp_path, document))
    assert saved.mesh.pair("h2", "h1").loss_pct == 33.3  # derived, as the writer derives it
    assert saved.mesh.peers is None and saved.elapsed is None and not saved.interrupted
    assert [h.groups for h in saved.mesh.hosts] == [(), (), ()]  # a report from before the groups


def test_the_hosts_groups_survive_a_round_trip(tmp_path):
    document = golden()
    for h, groups in zip(document["hosts"], (["rack-1", "web"], ["rack-1"], [])):
        h["groups"] = groups
    mesh = load_mesh_document(write(tmp_path, document)).mesh
    assert [h.groups for h in mesh.hosts] == [("rack-1", "web"), ("rack-1",), ()]
    assert [h["groups"] for h in MeshJson(mesh).as_dict()["hosts"]] == [["rack-1", "web"], ["rack-1"], []]


def rename(document, old, new):
    """`old` renamed `new` in the hosts and in every pair, so that only the name is wrong."""
    for h in document["hosts"]:
        h["name"] = new if h["name"] == old else h["name"]
    for pair in document["pairs"]:
        pair.update({end: new for end in ("src", "dst") if pair[end] == old})


def broken(change):
    document = golden()
    change(document)
    return document


@pytest.mark.parametrize("document, field, message", [
    (broken(lambda d: d["pairs"][1].update(state="flaky")), "pairs[1].state",
     "unknown state 'flaky' (one of ok, lossy, unreachable, error)"),
    (broken(lambda d: d["pairs"][0].update(dst="h9")), "pairs[0].dst",
     "host 'h9' is not in the report's hosts"),
    (broken(lambda d: d["hosts"][2].update(state="down")), "hosts[2].state", "unknown state 'down'"),
    (broken(lambda d: d["hosts"][0].update(ipv4="300.1.1.1")), "hosts[0].ipv4", "300"),
    (broken(lambda d: d["hosts"][1].update(name="h1")), "hosts[1].name", "listed twice"),
    (broken(lambda d: d["pairs"][2].update(sent="3")), "pairs[2].sent",
     "expected a whole number, not the text '3'"),
    (broken(lambda d: d["pairs"][2].update(received=4)), "pairs[2].received", "4 received of 3 sent"),
    (broken(lambda d: d["pairs"][0].update(rtt_avg_ms=-1)), "pairs[0].rtt_avg_ms", "0 or more"),
    (broken(lambda d: d["pairs"][0].pop("state")), "pairs[0].state", "missing"),
    (broken(lambda d: d["pairs"][5].update(src=["h1"])), "pairs[5].src", "expected a text, not a list"),
    (broken(lambda d: d["pairs"][3].update(rtt_max_ms=float("inf"))), "pairs[3].rtt_max_ms",
     "not inf"),
    (broken(lambda d: d["pairs"][3].update(error=3)), "pairs[3].error", "expected a text or null"),
    (broken(lambda d: d["pairs"][4].update(src="h3", dst="h3")), "pairs[4].dst", "paired with itself"),
    (broken(lambda d: d["pairs"].append(copy.deepcopy(d["pairs"][0]))), "pairs", "listed twice"),
    (broken(lambda d: d.pop("pairs")), "pairs", "missing"),
    (broken(lambda d: d.update(hosts={})), "hosts", "expected a list, not an object"),
    (broken(lambda d: d["probe"].update(count=0)), "probe", "count must be between 1 and 1000"),
    (broken(lambda d: d.update(interrupted="no")), "interrupted", "expected true or false"),
    (broken(lambda d: d.update(task="setup")), "task", "not a mesh report (task 'setup')"),
    # Numbers no run writes, which overflowed the float32 columns or wrapped the 16-bit counts.
    (broken(lambda d: d["pairs"][0].update(rtt_avg_ms=1e308)), "pairs[0].rtt_avg_ms",
     "at most 3,600,000, or null, not 1e+308"),
    (broken(lambda d: d["pairs"][0].update(rtt_p50_ms=1e39)), "pairs[0].rtt_p50_ms", "not 1e+39"),
    (broken(lambda d: d["summary"]["rtt_ms"].update(p99=1e300)), "summary.rtt_ms.p99", "not 1e+300"),
    (broken(lambda d: d["pairs"][2].update(sent=70_000, received=65_536)), "pairs[2].sent",
     "expected 0 to 65535 pings, not 70000"),
    (broken(lambda d: d["pairs"][2].update(sent=True)), "pairs[2].sent", "expected a whole number, not true"),
    (broken(lambda d: d["pairs"][0].update(underlay={"state": "ok", "sent": 10**20, "received": 0})),
     "pairs[0].underlay.sent", "expected 0 to 65535 pings"),
    (broken(lambda d: d["pairs"][1].update(loss_pct=500)), "pairs[1].loss_pct", "at most 100, or null"),
    (broken(lambda d: d["pairs"][1].update(loss_pct="all")), "pairs[1].loss_pct", "not the text 'all'"),
    (broken(lambda d: d.update(elapsed_s=-1.5)), "elapsed_s", "expected a number of 0 or more, or null"),
    (broken(lambda d: d["coverage"].update(peers_per_host=0)), "coverage.peers_per_host",
     "expected 1 or more, not 0"),
    # Texts that cannot be printed or written as UTF-8, and host names the inventory refuses.
    (broken(lambda d: rename(d, "h1", "h\ud800")), "hosts[0].name", "lone surrogate \\ud800 at character 1"),
    (broken(lambda d: d["pairs"][4].update(error="lost \udc80")), "pairs[4].error", "lone surrogate"),
    (broken(lambda d: d["hosts"][2].update(notes=["ok", "\udfff"])), "hosts[2].notes[1]", "lone surrogate"),
    (broken(lambda d: d["hosts"][2].update(notes=False)), "hosts[2].notes", "expected a list of texts"),
    (broken(lambda d: d["hosts"][1].update(groups="web")), "hosts[1].groups", "a list of group names"),
    (broken(lambda d: d["hosts"][1].update(groups=["web", ""])), "hosts[1].groups", "a list of group names"),
    (broken(lambda d: d["hosts"][0].update(groups=["\ud800"])), "hosts[0].groups[0]", "lone surrogate"),
    (broken(lambda d: rename(d, "h2", "")), "hosts[1].name", "invalid host name ''"),
    (broken(lambda d: rename(d, "h2", "h 2")), "hosts[1].name", "without spaces or control characters"),
    # A state its counts do not give: `unreachable` with nothing sent has no loss to show.
    (broken(lambda d: d["pairs"][1].update(sent=0)), "pairs[1].state",
     "'unreachable' with nothing sent, which is 'error'"),
    (broken(lambda d: d["pairs"][0].update(received=2)), "pairs[0].state",
     "'ok' with 2 received of 3 sent, which is 'lossy'"),
    (broken(lambda d: d["pairs"][0].update(underlay={"state": "lossy", "sent": 3, "received": 0})),
     "pairs[0].underlay.state", "'lossy' with 0 received of 3 sent, which is 'unreachable'"),
    (broken(lambda d: rename(d, "h3", "h3\x1b[2J")), "hosts[2].name", "invalid host name 'h3\\x1b[2J'"),
])
def test_a_bad_report_names_the_file_and_the_field(tmp_path, document, field, message):
    path = write(tmp_path, document)
    with pytest.raises(SavedReportError) as caught:
        load_mesh_document(path)
    assert caught.value.file == str(path) and caught.value.field == field
    assert str(caught.value).startswith(f"{path}: field {field!r}: ")
    assert message in str(caught.value)
    assert isinstance(caught.value, UsageError)  # the command line's exit 2


@pytest.mark.parametrize("text, message", [
    ('{"task": "mesh", "hosts": [', "not JSON: Expecting value at line 1 column 28"),
    ("[1, 2]", "expected a JSON object (a mesh report), not a list"),
    ('{"hosts": []}', "not a mesh report (no task field)"),
    ('{"tasks": [{"task": "setup"}]}', "no mesh report among its tasks (setup)"),
])
def test_a_file_that_is_no_mesh_report_says_so(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SavedReportError, match="^" + str(path) + ": ") as caught:
        load_mesh_document(path)
    assert message in str(caught.value)


@pytest.mark.parametrize("text, message", [
    pytest.param("[" * 100_000 + "]" * 100_000,
                 "not a mesh report: lists or objects nested too deeply to read", id="deep-array"),
    pytest.param('{"task": "mesh", "probe": ' + "[" * 5000 + "]" * 5000 + "}",
                 "not a mesh report: lists or objects nested too deeply to read", id="deep-field"),
    pytest.param('{"task": "mesh", "elapsed_s": ' + "9" * 5000 + "}",
                 "not JSON that can be read: Exceeds the limit (4300 digits) for integer string "
                 "conversion: value has 5000 digits", id="long-number"),
])
def test_a_file_json_cannot_read_is_refused_naming_it(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SavedReportError) as caught:
        load_mesh_document(path)
    assert str(caught.value) == f"{path}: {message}"


def test_a_message_is_one_printable_line_whatever_the_file_holds():
    document = {"tasks": [{"task": "setup\nmesh ALL OK"}, {"task": "x\ud800"}]}
    with pytest.raises(SavedReportError) as caught:
        mesh_from_document(document, source="run.json")
    assert str(caught.value) == ("run.json: no mesh report among its tasks (setup\\nmesh ALL OK, "
                                 "x\\ud800); `fleet run mesh --json FILE` writes one")
    str(caught.value).encode("utf-8")  # a terminal can show it


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(SavedReportError, match="nothing.json: No such file or directory"):
        load_mesh_document(tmp_path / "nothing.json")


def test_the_field_of_a_several_task_run_is_named_with_its_place():
    document = {"tasks": [{"task": "setup"}, broken(lambda d: d["pairs"][3].update(src=7))]}
    with pytest.raises(SavedReportError) as caught:
        mesh_from_document(document, source="run.json")
    assert caught.value.field == "tasks[1].pairs[3].src"
    assert str(caught.value) == ("run.json: field 'tasks[1].pairs[3].src': expected a text, not 7")


def test_the_underlay_mtu_check_and_percentiles_survive_a_round_trip(tmp_path):
    from array import array
    from collections import Counter
    from dataclasses import replace

    from fleet.mesh.ping import PingStats
    from fleet.mesh.probe import PingOutcome

    measured = mesh(["h1", "h2", "h3"], {("h1", "h3"): {"state": PairState.UNREACHABLE}})
    measured.params = replace(measured.params, underlay=True, mtu_size=1480)
    c = measured.columns
    c.pct[0:3] = array("f", [0.25, float("nan"), float("nan")])
    c.replies = Counter({250: 3, 500: 2, 900: 1})
    for row in range(len(c)):
        answered = 0 if row == 1 else 3
        c.set_underlay(row, PingOutcome("x", PingStats(3, answered, rtt_avg_ms=0.125 if answered
                                                       else None), 0))
        c.set_mtu(row, PingOutcome("y", PingStats(2, 0 if row == 2 else 2), 0))
    written = MeshJson(measured).as_dict()
    assert written["pairs"][0]["rtt_p50_ms"] == 0.25 and written["pairs"][1]["underlay"]["state"] \
        == "unreachable"
    assert any(f["kind"] == "mtu-blackhole" for f in written["diagnosis"])
    path = write(tmp_path, written)
    again = load_mesh_document(path).mesh
    assert MeshJson(again).as_dict() == written
    assert again.underlay_state_at(1) is PairState.UNREACHABLE and again.mtu_ok_at(2) is False
    assert render_mesh(again) == render_mesh(measured)


def test_a_pair_is_read_when_its_state_is_the_one_a_run_gives_its_counts():
    from fleet.mesh.model import classify
    from fleet.mesh.ping import PingStats
    from fleet.mesh.probe import PingOutcome

    for sent in range(4):
        for received in range(sent + 1):
            given = classify(PingOutcome("fping", PingStats(sent, received), 0))
            for state in PairState:
                document = golden()
                document["pairs"][0].update(state=state.value, sent=sent, received=received)
                document["pairs"][0]["underlay"] = {"state": state.value, "sent": sent,
                                                   "received": received}
                try:
                    mesh_from_document(document, source="r.json")
                    read = True
                except SavedReportError as exc:
                    assert exc.field == "pairs[0].state", exc
                    read = False
                assert read == (state in (given, PairState.ERROR)), (state, sent, received)


def test_a_bad_underlay_is_named_with_its_field(tmp_path):
    document = golden()
    document["pairs"][0]["underlay"] = {"state": "fine", "sent": 3, "received": 3}
    with pytest.raises(SavedReportError, match=r"pairs\[0\]\.underlay\.state.*unknown state 'fine'"):
        load_mesh_document(write(tmp_path, document))
