"""fleet against real OpenSSH servers: one network namespace per host (this machine's kernel).

The namespaces share this machine's kernel; where it lacks sit (as here), setup must say so per
host, and the mesh measures the hosts' stand-in IPv6 addresses on plain veths.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need_root_and, wait_for

from fleet.tunnel.preflight import FACTS_SCRIPT, parse_facts

pytestmark = [need_root_and("ip", "/usr/sbin/sshd", "ssh-keygen", "ping", "unshare")]

KERNEL_HAS_SIT = parse_facts(subprocess.run(["sh", "-c", FACTS_SCRIPT], capture_output=True,
                                            text=True).stdout).sit != "missing"


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    from fleet.lab.nsbed import NamespaceBed

    with NamespaceBed(4, workdir=tmp_path_factory.mktemp("nsbed")) as bed:
        yield bed


def probing(bed, names):
    """True once every named host runs its probe's pings (a process of that host's namespace)."""
    for host in bed.hosts:
        if host.name not in names:
            continue
        pids = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True,
                              text=True).stdout.split()
        commands = []
        for pid in pids:
            try:
                commands.append(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0])
            except OSError:
                continue  # gone meanwhile
        if not any(Path(c.decode(errors="replace")).name in ("fping", "ping") for c in commands):
            return False
    return True


def fleet(bed, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "fleet", *map(str, args), "-i", bed.inventory_dir],
                          capture_output=True, text=True, timeout=timeout)


def test_setup_reports_each_hosts_missing_kernel_support(bed, tmp_path):
    if KERNEL_HAS_SIT:
        pytest.skip("this kernel has sit: the preflight failure cannot be shown here")
    report = tmp_path / "setup.json"
    done = fleet(bed, "run", "setup", "--json", report)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    for host in ("h1", "h2", "h3", "h4"):
        assert any(line.startswith(f"{host}  failed  preflight: the kernel lacks sit/ISATAP support")
                   for line in lines), done.stdout
    document = json.loads(report.read_text())
    assert document["summary"] == {"hosts": 4, "ok": 0, "changed": 0, "failed": 4}


def test_mesh_over_real_ssh_measures_every_pair(bed, tmp_path):
    report = tmp_path / "mesh.json"
    done = fleet(bed, "run", "mesh", "--json", report)
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(report.read_text())
    summary = document["summary"]
    assert {k: summary[k] for k in ("hosts", "pairs", "ok", "lossy", "unreachable", "error")} == \
        {"hosts": 4, "pairs": 12, "ok": 12, "lossy": 0, "unreachable": 0, "error": 0}
    # 36 replies, each printed by fping: p50 and p90, not yet p99
    assert 0 < summary["rtt_ms"]["p50"] <= summary["rtt_ms"]["p90"] and summary["rtt_ms"]["p99"] is None
    assert summary["underlay"] is None and summary["mtu"] is None
    assert {p["received"] for p in document["pairs"]} == {3}
    assert all(p["rtt_avg_ms"] > 0 for p in document["pairs"])
    expected_state = "ok" if KERNEL_HAS_SIT else "unconfigured"  # stand-in addresses, no sit1
    assert {h["state"] for h in document["hosts"]} == {expected_state}
    assert done.stdout.startswith("mesh ALL OK: 4 hosts, 12 pairs: 12 ok")


@pytest.mark.parametrize("method", ["fping", "python", "ping"])
def test_every_probe_method_over_real_ssh(bed, method):
    done = fleet(bed, "run", "mesh", "--count", "2", "--probe", method, "--json", "-")
    document = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert document["summary"]["ok"] == 12
    assert {h["probe"] for h in document["hosts"]} == {method} and document["probe"]["method"] == method


def test_sampled_mesh_states_its_coverage(bed):
    done = fleet(bed, "run", "mesh", "--count", "1", "--peers", "2", "--json", "-")
    document = json.loads(done.stdout)
    assert document["summary"]["pairs"] == 8 and document["summary"]["ok"] == 8
    assert document["coverage"] == {"peers_per_host": 2, "pairs": 8, "fraction": 0.6667}
    assert "sampled: 2 peers per host (66.7% of pairs)" in done.stderr


@pytest.mark.parametrize("method", ["fping", "python", "ping"])
def test_underlay_and_mtu_ride_along_over_real_ssh(bed, method):
    """The hosts' IPv4 on the bridge answers --underlay; their 1500-byte veths pass --mtu's
    1480-byte don't-fragment pings; every reply of fping and fleet's prober is in the percentiles."""
    done = fleet(bed, "run", "mesh", "--count", "2", "--probe", method, "--underlay", "--mtu",
                 "--json", "-")
    document = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert document["summary"]["underlay"] == {"ok": 12, "lossy": 0, "unreachable": 0, "error": 0}
    assert document["summary"]["mtu"] == {"ok": 12, "failed": 0, "unknown": 0}
    assert all(p["underlay"]["received"] == 2 and p["underlay"]["rtt_avg_ms"] > 0
               for p in document["pairs"])
    assert {p["mtu"]["size"] for p in document["pairs"]} == {1480}
    assert {h["notes"] == [] for h in document["hosts"]} == {True}
    percentiles = document["summary"]["rtt_ms"]
    if method == "ping":
        assert percentiles == {"p50": None, "p90": None, "p99": None}
    else:  # 24 replies: p50 and p90, not p99
        assert percentiles["p50"] > 0 and percentiles["p90"] >= percentiles["p50"]
        assert percentiles["p99"] is None
        assert all(p["rtt_p50_ms"] > 0 for p in document["pairs"])


def test_json_to_stdout_keeps_stdout_clean(bed):
    done = fleet(bed, "run", "mesh", "--count", "1", "--json", "-")
    assert json.loads(done.stdout)["summary"]["pairs"] == 12
    assert "mesh ALL OK" in done.stderr


def test_several_tasks_in_one_run(bed):
    done = fleet(bed, "run", "teardown", "mesh", "--count", "1", "--json", "-")
    documents = json.loads(done.stdout)["tasks"]
    assert [d["task"] for d in documents] == ["teardown", "mesh"]
    assert documents[0]["summary"] == {"hosts": 4, "ok": 4, "changed": 0, "failed": 0}


@pytest.mark.parametrize("stopped_by, returncode", [
    (signal.SIGINT, 130),  # Ctrl-C: an exit code, as a shell's commands give
    (signal.SIGTERM, -signal.SIGTERM),  # kill, a CI job's timeout: ends by the signal itself
])
def test_interrupt_stops_with_a_partial_report(bed, stopped_by, returncode):
    process = subprocess.Popen([sys.executable, "-m", "fleet", "run", "mesh", "--count", "30",
                                "--json", "-", "-i", str(bed.inventory_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: probing(bed, {"h1", "h2", "h3", "h4"}) or process.poll() is not None,
             "every host's pings to start")
    process.send_signal(stopped_by)
    out, err = process.communicate(timeout=30)
    assert process.returncode == returncode, err
    assert "mesh COULD NOT TELL" in err  # the verdict is printed before it ends
    document = json.loads(out)
    assert document["interrupted"] is True
    assert {h["state"] for h in document["hosts"]} == {"error"}
    assert "interrupted before this host finished" in document["hosts"][0]["error"]


def test_a_dead_sshd_is_an_error_row_not_an_unreachable_column(bed, tmp_path):
    # Stop h2's sshd: h2 cannot probe (row: error), but it still answers pings (column: ok).
    bed.stop_sshd("h2")
    report = tmp_path / "mesh.json"
    done = fleet(bed, "run", "mesh", "--count", "1", "--json", report)
    assert done.returncode == 1
    pairs = {(p["src"], p["dst"]): p["state"] for p in json.loads(report.read_text())["pairs"]}
    assert {s for (src, _), s in pairs.items() if src == "h2"} == {"error"}
    assert {s for (src, _), s in pairs.items() if src != "h2"} == {"ok"}


def test_ipv6_disabled_is_named_in_preflight(bed):
    # Runs last: it takes h3's IPv6 away for good.
    subprocess.run(["ip", "netns", "exec", bed.hosts[2].netns, "sysctl", "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1"], check=True)
    done = fleet(bed, "run", "setup", "--limit", "h3")
    assert done.returncode == 1
    assert "h3  failed  preflight: IPv6 is disabled (net.ipv6.conf.all/default.disable_ipv6=1)" \
        in done.stdout


def test_persistent_connections_carry_from_run_to_run(bed, tmp_path):
    env = {**os.environ, "FLEET_PERSIST_DIR": str(tmp_path / "persist")}

    def persist_fleet(*args):
        return subprocess.run([sys.executable, "-m", "fleet", *map(str, args)], capture_output=True,
                              text=True, timeout=120, env=env)

    try:
        reports = []
        for run in (1, 2):
            report = tmp_path / f"mesh{run}.json"
            done = persist_fleet("run", "mesh", "-i", bed.inventory_dir, "--limit", "h1,h4",
                                 "--count", "1", "--persist", "60", "-v", "--json", report)
            assert done.returncode == 0, done.stdout + done.stderr
            reports.append(json.loads(report.read_text()))
        assert "2 connection(s) reused" in done.stderr
        assert reports[1]["summary"]["ok"] == 2
        status = json.loads(persist_fleet("persist", "status", "--json").stdout)
        assert sorted((c["host"], c["runs"], c["open"]) for c in status["connections"]) == [
            ("h1", 2, True), ("h4", 2, True)]

        # Ctrl-C during a run on kept connections: exit 130, and the connections stay usable.
        process = subprocess.Popen([sys.executable, "-m", "fleet", "run", "mesh", "-i",
                                    str(bed.inventory_dir), "--limit", "h1,h4", "--count", "30",
                                    "--persist", "60", "--json", "-"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: probing(bed, {"h1", "h4"}) or process.poll() is not None,
                 "h1's and h4's pings to start")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 130, err
        assert json.loads(out)["interrupted"] is True
        done = persist_fleet("run", "mesh", "-i", bed.inventory_dir, "--limit", "h1,h4",
                             "--count", "1", "--persist", "60", "-v")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "2 connection(s) reused" in done.stderr
    finally:
        assert persist_fleet("persist", "stop").returncode == 0

