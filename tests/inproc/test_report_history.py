"""`fleet report --history DB` in this process, over histories written by fleet.watch.history:
breaks and recoveries, flapping, the window, JSON, the timeline heatmap, and bad files."""

import json
import xml.etree.ElementTree as ET

import pytest

from fleet import cli
from fleet.watch.changes import HostSample, PairSample, RoundSnapshot, changes
from fleet.watch.history import RoundRecord, open_history

SVG = "{http://www.w3.org/2000/svg}"
T0 = 1_796_000_000.0  # 2026-11-30T00:53:20Z; every round 30 s after the one before


def snap(h2_down=False, h1_h2="ok"):
    hosts = (HostSample("h1", "ok"), HostSample("h2", "down" if h2_down else "ok"))
    return RoundSnapshot(hosts, (PairSample("h1", "h2", h1_h2),
                                 PairSample("h2", "h1", "not-measured" if h2_down else "ok")))


def write(path, rounds):
    previous = None
    with open_history(path, create=True) as history:
        for i, current in enumerate(rounds):
            status = "ok" if all(p.state == "ok" for p in current.pairs) else "not-ok"
            history.record(RoundRecord(T0 + 30 * i, T0 + 30 * i + 2, status, status.upper(), current,
                                       tuple(changes(previous, current))))
            previous = current


def fleet(capsys, *argv):
    capsys.readouterr()
    try:
        code = cli.main(list(map(str, argv)))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def history(tmp_path):
    path = tmp_path / "h.sqlite"
    # rounds 1-6: h1 -> h2 flaps (lossy, ok, unreachable, ok); h2 down in rounds 6-7 (ongoing)
    write(path, [snap(), snap(h1_h2="lossy"), snap(), snap(h1_h2="unreachable"), snap(),
                 snap(h2_down=True), snap(h2_down=True)])
    return path


def test_breaks_recoveries_and_flapping_as_text(capsys, history):
    code, out, _ = fleet(capsys, "report", "--history", history)
    assert code == 1  # the last round is not ok
    lines = out.splitlines()
    assert lines[0].startswith(f"history {history}: 7 round(s), 2026-")
    assert lines[1].startswith("rounds: 3 ok, 4 not-ok; last: round 7")
    assert lines[2] == "incidents: 4 (2 ongoing)"
    text = "\n".join(" ".join(line.split()) for line in lines)
    assert "h1 -> h2 tunnel lossy broke 2026-11-30 00:53:52 UTC " in text and "(round 2) recovered " in text
    assert "(round 3), 30 s" in text
    assert "h2 host-down down broke" in text and "(round 6) ongoing" in text
    assert "h2 -> h1 not-measured not-measured broke" in text
    assert "flapping (4 or more changes in the window): 1\nh1 -> h2 4 changes, rounds 2-5" in text


def test_the_window_and_json(capsys, history):
    code, out, err = fleet(capsys, "report", "--history", history, "--until",
                           "2026-11-30T00:55:30Z", "--json", "-", "--flapping", "2")
    assert code == 0, err  # the window ends at round 5, which is ok
    document = json.loads(out)
    assert document["rounds"] == {"count": 5, "first": 1, "last": 5,
                                  "statuses": {"ok": 3, "not-ok": 2, "could-not-tell": 0}}  # rounds 1-5
    assert [(i["name"], i["broke_round"], i["recovered_round"], i["ongoing"])
            for i in document["incidents"]] == [("h1 -> h2", 2, 3, False), ("h1 -> h2", 4, 5, False)]
    assert document["flapping"][0]["changes"] == 4 and document["ok"] is True
    assert "history " in err  # the text went to stderr
    code, out, _ = fleet(capsys, "report", "--history", history, "--since", "2026-12-30T00:00:00")
    assert code == 1 and "no round in the window (nothing verified)" in out


def test_the_timeline_draws_the_failing_rows_by_round(capsys, history, tmp_path):
    drawn = tmp_path / "timeline.svg"
    code, _, err = fleet(capsys, "report", "--history", history, "--heatmap", drawn)
    assert code == 1, err
    root = ET.parse(drawn).getroot()
    assert root.get("data-rounds") == "7" and root.get("data-rows") == "3"
    verdicts = [r.get("data-status") for r in root.iter(f"{SVG}rect") if r.get("data-status")]
    assert verdicts == ["ok", "not-ok", "ok", "not-ok", "ok", "not-ok", "not-ok"]
    rows = {g.get("data-name"): [(r.get("data-state"), r.get("data-from"), r.get("data-to"))
                                 for r in g.iter(f"{SVG}rect")]
            for g in root.iter(f"{SVG}g") if g.get("class") == "row"}
    assert rows == {
        "h2": [("ok", "1", "5"), ("down", "6", "7")],
        "h1 -> h2": [("ok", "1", "1"), ("lossy", "2", "2"), ("ok", "3", "3"), ("unreachable", "4", "4"),
                     ("ok", "5", "7")],
        "h2 -> h1": [("ok", "1", "5"), ("not-measured", "6", "7")]}
    page = tmp_path / "timeline.html"
    assert fleet(capsys, "report", "--history", history, "--heatmap", page)[0] == 1
    assert page.read_text().startswith("<!DOCTYPE html>") and 'id="fleet-timeline"' in page.read_text()


def test_bad_histories_and_mixed_options_are_exit_2_naming_the_file(capsys, tmp_path, history):
    missing = tmp_path / "missing.sqlite"
    code, _, err = fleet(capsys, "report", "--history", missing)
    assert code == 2 and f"--history {missing}: no such file" in err
    assert not missing.exists()
    text = tmp_path / "notes.txt"
    text.write_text("not sqlite " * 30)
    code, _, err = fleet(capsys, "report", "--history", text)
    assert code == 2 and f"--history {text}: not an SQLite file of fleet watch" in err
    code, _, err = fleet(capsys, "report", "--history", history, "--heatmap", tmp_path / "t.png")
    assert code == 2 and "the timeline is .html or .svg" in err
    code, _, err = fleet(capsys, "report", "saved.json", "--history", history)
    assert code == 2 and "not both" in err
    code, _, err = fleet(capsys, "report", "--history", history, "--max-loss-pct", "1")
    assert code == 2 and "--max-loss-pct: for a mesh report FILE.json, not --history" in err
    code, _, err = fleet(capsys, "report", "--history", history, "--heatmap", tmp_path / "t.svg",
                         "--heatmap-rtt-ms", "1,5")
    assert code == 2 and "--heatmap-rtt-ms: the RTT bands of a mesh report's matrix" in err
    assert not (tmp_path / "t.svg").exists()
    code, _, err = fleet(capsys, "report")
    assert code == 2 and "give a mesh report FILE.json, or --history DB" in err
    code, _, err = fleet(capsys, "report", "--history", history, "--since", "yesterday")
    assert code == 2 and "--since yesterday: give an ISO time" in err
