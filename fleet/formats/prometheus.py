"""Prometheus' text exposition format, for node_exporter's textfile collector (a `*.prom` file in
its --collector.textfile.directory): gauges per directed pair, per host and for the whole run.

    fleet_task_ok{task}                          1 the task's verdict is ok (its exit code 0)
    fleet_mesh_verdict{task,status}              1 for the mesh's verdict (ok, not-ok,
                                                 could-not-tell), 0 for the other two
    fleet_mesh_pair_up{task,src,dst}             1 every tunnel probe answered, 0 otherwise
    fleet_mesh_pair_loss_ratio{task,src,dst}     0..1; absent when it could not tell
    fleet_mesh_pair_rtt_seconds{task,src,dst,stat="min"|"avg"|"max"}   absent without replies
    fleet_mesh_pair_underlay_up{task,src,dst}    --underlay: 1 every IPv4 ping answered, 0 not;
                                                 absent when not measured or it could not tell
    fleet_mesh_pair_mtu_ok{task,src,dst}         --mtu: 1 full-size pings passed, 0 failed;
                                                 absent when not measured or it could not tell
    fleet_mesh_host_up{task,host}                1 the host probed its peers, 0 it could not
    fleet_mesh_pairs{task,state}                 pairs in each state
    fleet_mesh_hosts{task}, fleet_mesh_coverage_ratio{task}, fleet_mesh_duration_seconds{task}
    fleet_task_host_ok{task,host}                setup/teardown: 1 ok or changed, 0 failed
    fleet_task_hosts{task,status}                setup/teardown: hosts ok, changed, failed
    fleet_last_run_timestamp_seconds             when the file was written

`fleet_task_ok` and `fleet_mesh_verdict` render the run's one verdict (fleet.mesh.verdict), so an
alert on them fires whenever the exit code is not 0: an MTU black hole, a pair not measured, a
mesh of one host.

A full mesh is n(n-1) pairs times five series: 5 million at 1,000 hosts, more than a Prometheus
server should scrape from one file; use `fleet run mesh --peers K` for big fleets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet.formats.sources import MeshSource, hosts_reports, mesh_sources
from fleet.mesh.verdict import Status

if TYPE_CHECKING:
    from fleet.core.results import HostsReport
    from fleet.formats import TaskOutcomeLike

RTT_STATS = (("min", "rtt_min_ms"), ("avg", "rtt_avg_ms"), ("max", "rtt_max_ms"))  # label, field


def problem(path: Path, tasks: Sequence[str]) -> str | None:
    return None


def label_value(text: str) -> str:
    """A label value escaped as the format says: backslash, double quote and newline."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels(**pairs: str) -> str:
    return "{" + ",".join(f'{k}="{label_value(v)}"' for k, v in pairs.items()) + "}"


def number(value: float) -> str:
    return str(value) if isinstance(value, int) or value != int(value) else str(int(value))


def render(outcomes: Sequence[TaskOutcomeLike], path: Path, *,
           now: Callable[[], float] = time.time) -> Iterator[str] | None:
    meshes, hosts = mesh_sources(outcomes), hosts_reports(outcomes)
    if not meshes and not hosts:
        return None
    return _document(meshes, hosts, now())


def _family(name: str, help_text: str, samples: Iterator[str] | list[str]) -> Iterator[str]:
    yield f"# HELP {name} {help_text}\n# TYPE {name} gauge\n"
    for sample in samples:
        yield f"{name}{sample}\n"


def _document(meshes: list[MeshSource], hosts: list[HostsReport], written: float) -> Iterator[str]:
    yield from _family("fleet_task_ok", "1 when the task's verdict is ok (its exit code is 0).",
                       [f"{labels(task=s.task)} {int(s.verdict.ok)}" for s in meshes]
                       + [f"{labels(task=r.task)} {int(r.exit_code == 0)}" for r in hosts])
    if meshes:
        yield from _mesh_families(meshes)
    if hosts:
        yield from _hosts_families(hosts)
    yield from _family("fleet_last_run_timestamp_seconds", "When fleet wrote this file (Unix time).",
                       [f" {written:.3f}"])


def _pair_samples(meshes: list[MeshSource], value: Callable[[Any], list[tuple[str, Any]]],
                  ) -> Iterator[str]:
    for source in meshes:
        # the same few names again and again: escaped once, not once a sample
        escaped = {h.name: label_value(h.name) for h in source.mesh.hosts}
        task = label_value(source.task)
        for row in source.mesh.row_values():
            found = value(row)
            if found:
                base = f'{{task="{task}",src="{escaped[row.src]}",dst="{escaped[row.dst]}"'
                for extra, v in found:
                    yield f"{base}{extra}}} {number(v)}"


def _mesh_families(meshes: list[MeshSource]) -> Iterator[str]:
    yield from _family("fleet_mesh_verdict", "1 for the mesh's verdict: ok, not-ok or could-not-tell.",
                       [f"{labels(task=s.task, status=status.value)} {int(s.verdict.status is status)}"
                        for s in meshes for status in Status])
    yield from _family("fleet_mesh_pair_up", "1 when every probe from src to dst was answered.",
                       _pair_samples(meshes, lambda r: [("", 1 if str(r.state) == "ok" else 0)]))
    yield from _family("fleet_mesh_pair_loss_ratio", "Share of probes lost from src to dst "
                       "(absent when the probe could not run).",
                       _pair_samples(meshes, lambda r: [] if r.loss_pct is None
                                     else [("", r.loss_pct / 100)]))
    yield from _family("fleet_mesh_pair_rtt_seconds", "Round-trip time from src to dst.",
                       _pair_samples(meshes, lambda r: [
                           (f',stat="{stat}"', getattr(r, f) / 1000) for stat, f in RTT_STATS
                           if getattr(r, f) is not None]))
    yield from _family("fleet_mesh_pair_underlay_up", "1 when every IPv4 ping from src to dst's "
                       "tunnel endpoint was answered (--underlay).",
                       _pair_samples(meshes, lambda r: [] if r.underlay is None
                                     or str(r.underlay.state) == "error"
                                     else [("", int(str(r.underlay.state) == "ok"))]))
    yield from _family("fleet_mesh_pair_mtu_ok", "1 when don't-fragment pings filling the tunnel MTU "
                       "passed from src to dst (--mtu), 0 when they did not.",
                       _pair_samples(meshes, lambda r: [] if r.mtu is None or r.mtu.ok is None
                                     else [("", int(r.mtu.ok))]))
    yield from _family("fleet_mesh_host_up", "1 when the host could probe its peers.",
                       [f"{labels(task=s.task, host=h.name)} {int(h.state.value != 'error')}"
                        for s in meshes for h in s.mesh.hosts])
    yield from _family("fleet_mesh_pairs", "Directed pairs in each state.",
                       [f"{labels(task=s.task, state=state)} {count}"
                        for s in meshes for state, count in s.mesh.counts().items()])
    yield from _family("fleet_mesh_hosts", "Hosts in the mesh.",
                       [f"{labels(task=s.task)} {len(s.mesh.hosts)}" for s in meshes])
    yield from _family("fleet_mesh_coverage_ratio", "Share of all directed pairs probed.",
                       [f"{labels(task=s.task)} {number(round(s.mesh.coverage(), 6))}" for s in meshes])
    yield from _family("fleet_mesh_duration_seconds", "How long the mesh task ran.",
                       [f"{labels(task=s.task)} {s.elapsed:.3f}" for s in meshes])


def _hosts_families(reports: list[HostsReport]) -> Iterator[str]:
    yield from _family("fleet_task_host_ok", "1 when the task succeeded on the host (ok or changed).",
                       [f"{labels(task=r.task, host=h.name)} {int(not h.failed)}"
                        for r in reports for h in r.hosts])
    yield from _family("fleet_task_hosts", "Hosts by the task's outcome.",
                       [f"{labels(task=r.task, status=status)} {count}"
                        for r in reports for status, count in r.counts.items()])
