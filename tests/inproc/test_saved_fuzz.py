"""`fleet report` over files no run writes: arbitrary JSON, and real reports mutated field by field
and byte by byte. Whatever a file holds, the command reads it, and then every output renders it
(the table, --json, --junit, --prometheus, --heatmap, a comparison), or refuses it with exit 2 and
one line naming the file. It never raises, and never reads bad input as a failed run (exit 1)."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
from array import array
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from junitparser import JUnitXml
from meshes import mesh
from prometheus_client.parser import text_string_to_metric_families

from fleet import cli
from fleet.mesh.model import PairState
from fleet.mesh.ping import PingStats
from fleet.mesh.probe import PingOutcome
from fleet.mesh.report import MeshJson

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "mesh_report.json"
# About 10 s in all; FLEET_FUZZ_EXAMPLES=5000 for a longer search.
EXAMPLES = int(os.environ.get("FLEET_FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def measured_report() -> dict[str, Any]:
    """A report with everything a run can write: underlay, MTU check, percentiles, a lossy pair,
    a host that could not probe, notes."""
    m = mesh(["h1", "h2", "h3", "h4"], {("h1", "h3"): {"state": PairState.UNREACHABLE},
                                        ("h2", "h4"): {"state": PairState.LOSSY, "received": 2},
                                        ("h4", "h1"): {"state": PairState.ERROR}})
    m.params = replace(m.params, underlay=True, mtu_size=1480)
    m.hosts = (replace(m.hosts[0], notes=("fping missing: probed with ping",)),) + m.hosts[1:]
    c = m.columns
    c.pct[0:3] = array("f", [0.25, 0.5, math.nan])
    c.replies = Counter({250: 3, 500: 2, 900: 1})
    for row in range(len(c)):
        c.set_underlay(row, PingOutcome("fping", PingStats(3, 0 if row == 1 else 3, rtt_avg_ms=0.125), 0))
        c.set_mtu(row, PingOutcome("fping", PingStats(2, 0 if row == 2 else 2), 0))
    return MeshJson(m, interrupted=False, elapsed_s=2.5).as_dict()


SEEDS = [json.loads(GOLDEN.read_text()), measured_report()]

# Values no run writes, and a few it does, put where they do not belong.
ODD_VALUES = [None, True, False, 0, -1, -0.0, 1, 2, 3, 65535, 65536, 10**20, 2**63, 0.5, 100.0, 100.1,
              1e38, 3.5e38, 1e39, 1e308, -1e308, math.nan, math.inf, -math.inf, 1280, 60, 0.01,
              "", " ", "h1", "h2", "h3", "h4", "ok", "lossy", "unreachable", "error", "mesh",
              "\ud800", "h\udfff", "a\nb", "\x1b[2J", "h1 ", "172.31.0.11", "::1", "1e308",
              [], {}, ["h1"], {"task": "mesh"}, [[[[[]]]]]]
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["\ud800", "x\udc80y", "\x00", "\u2028"]))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12)
NASTY = st.one_of(st.sampled_from(ODD_VALUES), JSON)
# A value of the same JSON type as the one it replaces: a number where a number was, a text for
# a text, which gets further into the reader than a value of the wrong type.
LIKE = {bool: st.booleans(), int: st.integers() | st.sampled_from([-1, 65535, 65536, 10**20]),
        float: st.floats() | st.sampled_from([1e39, 1e308, 3.5e38, -0.0, 100.1]), str: TEXT}


def paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document, as keys and indexes from the top."""
    found = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, here + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += paths(item, here + (i,))
    return found


@st.composite
def mutated_reports(draw: st.DrawFn) -> bytes:
    """A real report with a few of its values replaced, removed or repeated, hosts renamed, and
    perhaps its bytes cut short or changed."""
    document = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(paths(document)[1:]))
        parent = document
        for key in where[:-1]:
            parent = parent[key]
        how = draw(st.sampled_from(["like", "like", "replace", "remove", "repeat", "rename"]))
        old = _at(document, where)
        if how == "like" and type(old) in LIKE:
            parent[where[-1]] = draw(LIKE[type(old)] | st.sampled_from([None, True, 0, 0.5, "", []]))
        elif how == "replace":
            parent[where[-1]] = draw(NASTY)
        elif how == "remove":
            del parent[where[-1]]
        elif how == "repeat" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[where[-1]]))
        elif how == "rename" and isinstance(document.get("hosts"), list):
            old, new = draw(st.sampled_from(["h1", "h2", "h3"])), draw(TEXT | NASTY)
            for item in paths(document):
                if item and _at(document, item) == old:
                    _at(document, item[:-1])[item[-1]] = new
    data = json.dumps(document).encode("utf-8")
    cut = draw(st.sampled_from(["none", "none", "none", "truncate", "byte"]))
    if cut == "truncate":
        data = data[:draw(st.integers(0, len(data)))]
    elif cut == "byte":
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    return data


def _at(document: Any, where: tuple[Any, ...]) -> Any:
    for key in where:
        document = document[key]
    return document


def fleet_report(*argv: Any) -> tuple[int, str, str]:
    """`fleet report ...` in this process; its output goes to strict UTF-8 streams, as to a
    terminal or a pipe, so text that cannot be written fails here as it would there."""
    out, err = io.BytesIO(), io.BytesIO()
    out_text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    err_text = io.TextIOWrapper(err, encoding="utf-8", newline="", write_through=True)
    with contextlib.redirect_stdout(out_text), contextlib.redirect_stderr(err_text):
        code = cli.main(["report", *map(str, argv)])
    return code, out.getvalue().decode("utf-8"), err.getvalue().decode("utf-8")


def refused(code: int, out: str, err: str, path: Path) -> bool:
    """True when the command refused `path` as it should: exit 2, one line naming the file."""
    if code != 2:
        return False
    assert out == ""
    assert err.startswith(f"fleet: error: {path}: ") and err.count("\n") == 1 and err.endswith("\n"), err
    return True


GATES = ["--max-loss-pct", "10", "--max-rtt-ms", "100", "--max-rtt-increase-pct", "50"]


def read_or_refused(directory: Path, data: bytes) -> str:
    """The property: `data` as FILE.json (and as --baseline) is read and rendered into every
    output, or refused with exit 2 naming it."""
    path = directory / "r.json"
    path.write_bytes(data)
    files = {"--junit": directory / "r.xml", "--prometheus": directory / "r.prom",
             "--heatmap": directory / "r.html"}
    for written in files.values():
        written.unlink(missing_ok=True)
    code, out, err = fleet_report(path, *[a for pair in files.items() for a in pair], "--json", "-")
    if refused(code, out, err, path):
        assert refused(*fleet_report(GOLDEN, "--baseline", path), path)
        return "refused"
    assert code in (0, 1, 130), err
    assert err.startswith("mesh ") and all(f.exists() for f in files.values())
    pairs = len(json.loads(out)["pairs"])
    # a case per pair, and one for the run's verdict
    assert sum(1 for suite in JUnitXml.fromfile(str(files["--junit"])) for _ in suite) == pairs + 1
    assert list(text_string_to_metric_families(files["--prometheus"].read_text()))
    # What was read is written again as a report that reads back to the same verdict.
    again = directory / "again.json"
    again.write_text(out, encoding="utf-8")
    code_again, _, err_again = fleet_report(again)
    assert code_again == code, err_again
    # Compared both ways with a real report, through the gates.
    for current, baseline in ((path, GOLDEN), (GOLDEN, path)):
        code, out, err = fleet_report(current, "--baseline", baseline, *GATES, "--json", "-")
        assert code in (0, 1), err
        assert json.loads(out)["comparison"] == "mesh"
    return "read"


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_the_seeds_are_read(directory):
    for seed in SEEDS:
        read_or_refused(directory, json.dumps(seed).encode())
        assert fleet_report(directory / "r.json")[0] == 1  # both have failing pairs


@FUZZ
@given(data=mutated_reports())
def test_a_mutated_report_is_read_or_refused_naming_the_file(directory, data):
    event(read_or_refused(directory, data))


@settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
@given(document=JSON)
def test_any_json_value_is_read_or_refused_naming_the_file(directory, document):
    event(read_or_refused(directory, json.dumps(document).encode("utf-8")))


@settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
@given(document=st.fixed_dictionaries({"task": st.just("mesh")}, optional={
    "probe": NASTY, "coverage": NASTY, "hosts": NASTY | st.lists(NASTY, max_size=3),
    "pairs": NASTY | st.lists(NASTY, max_size=3), "summary": NASTY, "interrupted": NASTY,
    "elapsed_s": NASTY}))
def test_a_mesh_document_of_any_values_is_read_or_refused_naming_the_file(directory, document):
    event(read_or_refused(directory, json.dumps(document).encode("utf-8")))


def rename(document: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    for item in paths(document):
        if item and _at(document, item) == old and item[-1] in ("name", "src", "dst"):
            _at(document, item[:-1])[item[-1]] = new
    return document


def golden_with(change: Any) -> bytes:
    document = json.loads(GOLDEN.read_text())
    change(document)
    return json.dumps(document).encode("utf-8")


@pytest.mark.parametrize("data, field", [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, None, id="nested-deeply"),
    pytest.param(golden_with(lambda d: rename(d, "h1", "h\ud800")), "hosts[0].name", id="surrogate-name"),
    pytest.param(golden_with(lambda d: d["pairs"][4].update(error="\udc80")), "pairs[4].error",
                 id="surrogate-error"),
    pytest.param(golden_with(lambda d: d["pairs"][3].update(rtt_avg_ms=1e308)), "pairs[3].rtt_avg_ms",
                 id="rtt-1e308"),
    pytest.param(golden_with(lambda d: d["pairs"][0].update(rtt_min_ms=1e39)), "pairs[0].rtt_min_ms",
                 id="rtt-past-float32"),
    pytest.param(golden_with(lambda d: d["pairs"][2].update(sent=65_536, received=65_536)),
                 "pairs[2].sent", id="count-past-16-bits"),
    pytest.param(golden_with(lambda d: d["pairs"][2].update(loss_pct=-3)), "pairs[2].loss_pct",
                 id="negative-loss"),
    pytest.param(golden_with(lambda d: d.update(elapsed_s=-1)), "elapsed_s", id="negative-elapsed"),
    pytest.param(golden_with(lambda d: d["pairs"][1].update(sent=0)), "pairs[1].state",
                 id="unreachable-with-nothing-sent"),
    pytest.param(b'{"task": "mesh", "elapsed_s": ' + b"9" * 5000 + b"}", None, id="long-number"),
    pytest.param(b"", None, id="empty"),
    pytest.param(b"[]", None, id="array"),
    pytest.param(b'{"task": "mesh", "hosts": [{"name": "\xff"}]}', None, id="not-utf-8"),
    pytest.param(GOLDEN.read_bytes()[:-40], None, id="truncated"),
])
def test_input_that_crashed_or_read_as_a_verdict_is_exit_2_naming_file_and_field(directory, data, field):
    path = directory / "bad.json"
    path.write_bytes(data)
    for argv in ((path,), (GOLDEN, "--baseline", path)):
        code, out, err = fleet_report(*argv)
        assert refused(code, out, err, path)
        assert field is None or f"field {field!r}: " in err


def test_a_mesh_too_big_to_draw_is_read_and_rendered_everywhere(directory):
    names = [f"host-{i}" for i in range(70)]  # past the matrix's 60: a line per host instead
    big = MeshJson(mesh(names, {(names[0], names[1]): {"state": PairState.UNREACHABLE}})).as_dict()
    assert read_or_refused(directory, json.dumps(big).encode()) == "read"
