import os
import re
import shutil
import subprocess

import pytest

from fleet.mesh.fping import parse_fping, stats_from_times
from fleet.mesh.probe import METHODS, MeshProbe, ProbeParams

PROBE = MeshProbe()
A, B, C = (f"fd00::{i}" for i in (1, 2, 3))


def test_ping_lanes_bound_concurrency_and_cover_every_target():
    targets = [f"fd00::{i}" for i in range(1, 11)]
    script = PROBE.script(targets, ProbeParams(parallel=3, method="ping"))
    lanes = [line.strip() for line in script.splitlines() if line.strip().startswith("p ")]
    assert len(lanes) == 3
    assert sorted(a for lane in lanes for a in lane.split()[1:-1]) == sorted(targets)


def test_auto_prefers_one_process_per_source():
    script = PROBE.script([A, B], ProbeParams())
    tests = re.findall(r"^if .*command -v (\S+) >/dev/null 2>&1; then$", script, re.M)
    assert "ip " not in script.split("ran=")[0]  # the tunnel's addresses: shell builtins only
    assert tests == ["fping", "python3", "ping"]
    assert script.count("set -- ") == 1 and "\nset -- fd00::1 fd00::2\n" in script  # the peers, once
    assert script.count("def main(argv)") == 1  # the prober's text too: set once, used by every round
    assert 'fping -6 -q -C 3 -p 200 -i 1 -t 1000 "$@"' in script


def test_a_forced_method_has_no_fallback():
    script = PROBE.script([A], ProbeParams(method="python"))
    assert "command -v fping" not in script and "command -v ping" not in script
    assert "python3 -c" in script


def test_expected_time_is_one_ping_round_per_lane_round():
    params = ProbeParams(count=3, interval=0.2, timeout=1, parallel=16)
    assert params.expected_seconds(15) == pytest.approx(1.4 + 15 * 0.002)
    assert params.expected_seconds(33) == pytest.approx(3 * 1.4 + 33 * 0.002)


@pytest.mark.parametrize("kwargs", [{"count": 0}, {"interval": 0}, {"timeout": 0}, {"parallel": 0},
                                    {"method": "carrier-pigeon"}])
def test_params_are_checked(kwargs):
    with pytest.raises(ValueError):
        ProbeParams(**kwargs)


def test_fping_summaries_and_send_errors():
    stats, errors = parse_fping("fd00::1 : 0.412 0.530 -\nfd00::2 : - - -\n"
                                "fd00::3: error while sending ping: Network is unreachable\n"
                                "fd00::3 : - - -\n")
    assert (stats["fd00::1"].sent, stats["fd00::1"].received, stats["fd00::1"].rtt_max_ms) == (3, 2, 0.53)
    assert stats["fd00::2"].received == 0 and errors == {"fd00::3": "Network is unreachable"}


def test_mdev_is_what_ping_computes():
    # iputils: mdev = sqrt(mean(t^2) - mean(t)^2); from ok-verbose.txt: 0.015 0.039 0.038 -> 0.011
    assert stats_from_times([0.015, 0.039, 0.038]).rtt_mdev_ms == 0.011


def test_parse_ping_lanes_marks_missing_and_failed_targets():
    # What parallel pings print on one pipe: headers, errors and whole summaries, interleaved.
    output = "\n".join([
        "@@fleet tunnel", "fd005efe01ab00000000000000000001 40", "@@fleet method ping",
        f"PING {A}({A}) 56 data bytes",
        "ping: connect: Network is unreachable",
        "", f"--- {A} ping statistics ---",
        "3 packets transmitted, 3 received, 0% packet loss, time 402ms",
        "rtt min/avg/max/mdev = 0.1/0.2/0.3/0.05 ms",
        f"PING {C}({C}) 56 data bytes",
        "", f"--- {C} ping statistics ---",
        "3 packets transmitted, 0 received, 100% packet loss, time 2046ms",
    ])
    answer = PROBE.parse(output, [A, B, C])
    assert answer.method == "ping"
    assert [str(a) for a in answer.tunnel_addresses] == ["fd00:5efe:1ab::1/64"]
    assert answer.outcomes[A].stats.received == 3 and answer.outcomes[A].stats.rtt_mdev_ms == 0.05
    assert answer.outcomes[C].stats.received == 0  # unreachable: measured
    assert answer.outcomes[B].stats is None  # could not tell, and why
    assert answer.outcomes[B].error == \
        "ping printed no statistics (ping said: connect: Network is unreachable)"


def test_parse_summary_method_with_a_send_error_is_could_not_tell():
    output = "\n".join(["@@fleet tunnel", "@@fleet method python", f"{A} : 1.0 1.2 1.1",
                        f"{B}: error while sending ping: Network is unreachable", f"{B} : - - -",
                        "@@fleet-rc 0"])
    answer = PROBE.parse(output, [A, B])
    assert answer.method == "python" and answer.outcomes[A].stats.received == 3
    assert answer.outcomes[B].stats is None and "Network is unreachable" in answer.outcomes[B].error


PROBERS = {"fping": "fping", "python": "python3", "ping": "ping"}


@pytest.mark.parametrize("method", [m for m in METHODS if m != "auto"])
def test_every_method_really_runs_and_pings_loopback(method):
    # A real shell and the real prober, to ::1 only.
    if shutil.which(PROBERS[method]) is None:
        pytest.skip(f"needs {PROBERS[method]}")
    targets = ["::1"]
    script = PROBE.script(targets, ProbeParams(count=2, interval=0.2, parallel=4, method=method))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    answer = PROBE.parse(done.stdout, targets)
    outcome = answer.outcomes["::1"]
    assert answer.method == method
    assert (outcome.stats.sent, outcome.stats.received) == (2, 2)
    assert outcome.stats.rtt_avg_ms > 0


@pytest.mark.skipif(shutil.which("python3") is None, reason="needs python3")
def test_a_prober_that_fails_outright_falls_back_with_a_note(tmp_path):
    # An fping that exits 4 at once, as Debian's does without /etc/protocols.
    (tmp_path / "fping").write_text("#!/bin/sh\nexit 4\n")
    (tmp_path / "fping").chmod(0o755)
    targets = ["::1"]
    script = PROBE.script(targets, ProbeParams(count=2, interval=0.2))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    answer = PROBE.parse(done.stdout, targets)
    assert answer.method == "python"
    assert answer.notes == ("fping failed with exit status 4",)
    assert answer.outcomes[targets[0]].stats.received == 2

    # and when every prober fails, the notes say so
    (tmp_path / "python3").write_text("#!/bin/sh\necho 'python3: broken' >&2\nexit 1\n")
    (tmp_path / "python3").chmod(0o755)
    script = PROBE.script(targets, ProbeParams(count=2, interval=0.2, method="auto"))
    script = script.replace("command -v ping", "command -v no-such-ping")
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    answer = PROBE.parse(done.stdout, targets)
    assert done.returncode == 4
    assert answer.notes == ("fping failed with exit status 4",
                            "python failed with exit status 1: python3: broken")
    assert "python3: broken" in answer.outcomes["::1"].error


@pytest.mark.skipif(shutil.which("ping") is None, reason="needs iputils ping")
def test_parallel_ping_lanes_keep_their_answers_apart():
    # Four spellings of ::1, four lanes at once: every answer lands under its own address.
    targets = ["::1", "0::1", "::0:1", "0:0::1"]
    script = PROBE.script(targets, ProbeParams(count=2, interval=0.2, parallel=4, method="ping"))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    answer = PROBE.parse(done.stdout, targets)
    assert {t: (o.stats.sent, o.stats.received) for t, o in answer.outcomes.items()} == \
        {t: (2, 2) for t in targets}
