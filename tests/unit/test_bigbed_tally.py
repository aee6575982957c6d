"""What `python -m benchmarks.bigbed` reads from fleet's reports and how it sums its runs (the
1,000-host runs themselves: docs/performance.md)."""

import json
import os
import subprocess
import sys
import time

from benchmarks.bigbed import _read_report, steady_round, summarize, tree_cpu_s


def test_a_mesh_report_counts_ok_pairs_and_only_hosts_in_error(tmp_path):
    report = tmp_path / "report.json"
    report.write_text(json.dumps({
        "elapsed_s": 5.4,
        "hosts": [{"name": "h1", "state": "unconfigured", "error": "sit1 does not carry ..."},
                  {"name": "h2", "state": "error", "error": "connection refused"}],
        "summary": {"hosts": 2, "pairs": 2, "ok": 1, "lossy": 0, "unreachable": 1, "error": 0,
                    "rtt_ms": {"p50": 0.01}}}))
    assert _read_report(report, "cold", 2, 1) == {
        "ok": 1, "expected": 2, "run_s": 5.4, "pairs": 2, "errors": ["h2: connection refused"],
        "states": {"ok": 1, "unreachable": 1}}


def test_a_noop_report_counts_ok_and_changed_hosts_and_a_missing_one_counts_nothing(tmp_path):
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"hosts": [{"name": "h3", "error": "timed out"}],
                                  "summary": {"ok": 997, "changed": 2, "failed": 1}}))
    assert _read_report(report, "logins", 1000, 20) == {
        "ok": 999, "expected": 1000, "errors": ["h3: timed out"], "run_s": None}
    missing = _read_report(tmp_path / "absent.json", "warm", 1000, 20)
    assert (missing["ok"], missing["expected"]) == (0, 20000)
    assert missing["errors"][0].startswith("no JSON report")


def test_the_summary_takes_medians_and_the_worst_run():
    rows = [{"mode": "warm", "wall_s": w, "cpu_s": 1.0 + i, "rss_tree_mb": 100 + i,
             "target_cpu_s": 6.0, "others_cpu_s": 4.0, "load_before": 10.0, "load_after": 12.5,
             "ok": ok, "expected": 20000} for i, (w, ok) in enumerate([(6.3, 20000), (5.8, 19990),
                                                                       (6.9, 20000)])]
    [warm] = summarize(rows, ["cold", "warm"])
    assert (warm["wall_median_s"], warm["wall_min_s"], warm["wall_max_s"]) == (6.3, 5.8, 6.9)
    assert (warm["cpu_median_s"], warm["rss_tree_peak_mb"], warm["ok_min"]) == (2.0, 102, 19990)
    assert warm["loads"] == ["10.0-12.5"] * 3


def test_the_targets_cpu_includes_what_ran_under_them_and_nothing_else():
    busy = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    parent = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys, time; subprocess.run([sys.executable, '-c', "
                               f"{busy!r}]); time.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while tree_cpu_s({parent.pid}) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.1)
        spent = tree_cpu_s({parent.pid})
        assert 0.3 <= spent < 2.0  # the child's 0.3 s (waited for) plus the parent's start-up
        assert tree_cpu_s({os.getpid() + 10_000_000}) == 0.0
    finally:
        parent.kill()
        parent.wait()


def test_a_watch_is_read_from_its_json_lines_last_round_and_every_round_time(tmp_path):
    report = tmp_path / "rounds.jsonl"
    lines = [{"round": 1, "seconds": 12.5, "pairs": 4, "logins": 2, "counts": {"ok": 3, "lossy": 1}},
             {"round": 2, "seconds": 3.25, "pairs": 4, "logins": 2, "counts": {"ok": 4, "lossy": 0}}]
    report.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert _read_report(report, "watch6", 2, 2) == {
        "ok": 4, "expected": 4, "pairs": 4, "errors": [], "round_s": [12.5, 3.25], "logins": 2,
        "states": {"ok": 4}}
    report.write_text("")
    assert _read_report(report, "watch1", 2, 2)["errors"] == ["no round"]


def test_a_steady_watch_round_is_the_difference_of_the_medians_over_five_rounds():
    def row(mode, wall, cpu, target, others):
        return {"mode": mode, "wall_s": wall, "cpu_s": cpu, "target_cpu_s": target,
                "others_cpu_s": others}

    rows = [row("watch1", 20, 5, 25, 6), row("watch1", 22, 5, 27, 6), row("watch1", 21, 5, 26, 6),
            row("watch6", 41, 10, 40, 11), row("watch6", 40, 9, 39, 10), row("watch6", 45, 11, 41, 12)]
    # medians: watch1 21, 5, 26, 6; watch6 41, 10, 40, 11
    assert steady_round(rows) == {"wall_s": 4.0, "cpu_s": 1.0, "target_cpu_s": 2.8,
                                  "others_cpu_s": 1.0}
    assert steady_round(rows[:3]) is None
