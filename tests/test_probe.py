import shutil
import subprocess
from ipaddress import IPv6Address

import pytest

from fleet.probe import PingProbe, ProbeParams

PROBE = PingProbe()


def test_lanes_bound_concurrency_and_cover_every_target():
    targets = [IPv6Address(f"fd00::{i}") for i in range(1, 11)]
    script = PROBE.script(targets, ProbeParams(parallel=3))
    lanes = [line for line in script.splitlines() if line.startswith("p ")]
    assert len(lanes) == 3
    assert sorted(a for lane in lanes for a in lane.split()[1:-3]) == sorted(str(t) for t in targets)


def test_expected_time_is_one_ping_round_per_lane_round():
    params = ProbeParams(count=3, interval=0.2, timeout=1, parallel=16)
    assert params.expected_seconds(15) == pytest.approx(1.4)
    assert params.expected_seconds(33) == pytest.approx(3 * 1.4)


@pytest.mark.parametrize("kwargs", [{"count": 0}, {"interval": 0}, {"timeout": 0}, {"parallel": 0}])
def test_params_are_checked(kwargs):
    with pytest.raises(ValueError):
        ProbeParams(**kwargs)


def test_parse_marks_missing_and_failed_targets():
    a, b, c = (IPv6Address(f"fd00::{i}") for i in (1, 2, 3))
    output = "\n".join([
        "@@fleet addr", "[]", "@@fleet probe",
        f"@@fleet ping {a}", "", f"--- {a} ping statistics ---",
        "3 packets transmitted, 3 received, 0% packet loss, time 402ms",
        "rtt min/avg/max/mdev = 0.1/0.2/0.3/0.05 ms", "@@fleet rc 0",
        f"@@fleet ping {b}", "ping: connect: Network is unreachable", "@@fleet rc 2",
    ])
    outcomes = PROBE.parse(output, [a, b, c])
    assert outcomes[a].stats.received == 3 and outcomes[a].exit_status == 0
    assert outcomes[b].stats is None and outcomes[b].error == "connect: Network is unreachable"
    assert outcomes[c].error == "no result from the probe"


@pytest.mark.skipif(shutil.which("ping") is None, reason="needs iputils ping")
def test_the_script_really_runs_and_pings_loopback():
    # A real shell and real ping, to ::1 only: both lanes report, and the temp dir is gone.
    targets = [IPv6Address("::1")]
    script = PROBE.script(targets, ProbeParams(count=2, interval=0.2, parallel=4))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    outcome = PROBE.parse(done.stdout, targets)[IPv6Address("::1")]
    assert (outcome.stats.sent, outcome.stats.received, outcome.exit_status) == (2, 2, 0)
