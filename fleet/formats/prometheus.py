"""Prometheus' text exposition format, for node_exporter's textfile collector (a `*.prom` file in
its --collector.textfile.directory), named as Prometheus' practices say: one statistic per
metric, the unit in the name, no label that cannot vary within the metric.

    fleet_task_ok{task}                          1 the task's verdict is ok (its exit code 0)
    fleet_task_last_run_timestamp_seconds{task}  when the task's result was written (Unix time):
                                                 setup and mesh may write files of their own into
                                                 one textfile directory without colliding
    fleet_task_host_ok{task,host}                setup/teardown: 1 ok or changed, 0 failed
    fleet_task_hosts{task,status}                setup/teardown: hosts ok, changed, failed

    fleet_mesh_verdict{status}                   1 for the mesh's verdict (ok, not-ok,
                                                 could-not-tell), 0 for the other two
    fleet_mesh_hosts, fleet_mesh_coverage_ratio, fleet_mesh_duration_seconds
    fleet_mesh_pairs{state}                      pairs in each state
    fleet_mesh_loss_ratio                        0..1 over every ping of the pairs that could tell
                                                 (to the loss percentage's 0.1: 0.333)
    fleet_mesh_rtt_p50_seconds, _p90_seconds, _p99_seconds
                                                 the mesh's RTT: nearest-rank percentiles over
                                                 every reply (fleet.mesh.percentiles), the figure
                                                 the table and the JSON report give; absent with
                                                 too few replies
    fleet_mesh_host_up{host}                     1 the host probed its peers, 0 it could not
    fleet_mesh_host_pairs{host,direction}        pairs probed from (out) and to (in) the host
    fleet_mesh_host_pairs_ok{host,direction}     of those, the pairs the verdict calls ok
    fleet_mesh_host_loss_ratio{host,direction}   0..1 over the pings of those pairs that could
                                                 tell; absent when none could

Per directed pair, only on request (`pairs=True`; `--prometheus-pairs` on the command line):

    fleet_mesh_pair_up{src,dst}                  1 every tunnel probe answered, 0 otherwise
    fleet_mesh_pair_loss_ratio{src,dst}          0..1; absent when it could not tell
    fleet_mesh_pair_rtt_avg_seconds{src,dst}     the pair's average RTT; absent without replies
    fleet_mesh_pair_underlay_up{src,dst}         --underlay: 1 every IPv4 ping answered, 0 not;
                                                 absent when not measured or it could not tell
    fleet_mesh_pair_mtu_ok{src,dst}              --mtu: 1 full-size pings passed, 0 failed;
                                                 absent when not measured or it could not tell

`fleet_task_ok` and `fleet_mesh_verdict` render the run's one verdict (fleet.mesh.verdict), so an
alert on them fires whenever the exit code is not 0: an MTU black hole, a pair not measured, a
mesh of one host.

By default the file grows with the hosts, not the pairs: 7 series a host (7,000 at 1,000 hosts).
Per-pair series are n(n-1) times up to five, 5 million at 1,000 hosts, more than a Prometheus
server should scrape from one file: ask for them on small meshes, or with `--peers K`.
Times are in seconds to the microsecond (the RTTs' resolution), ratios to 4 decimals.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet.formats.sources import MeshSource, hosts_reports, mesh_sources
from fleet.mesh.compare import overall_loss_pct
from fleet.mesh.model import STATES, PairState
from fleet.mesh.ping import loss_pct
from fleet.mesh.verdict import Status, pairs_ok

if TYPE_CHECKING:
    from fleet.core.results import HostsReport
    from fleet.formats import TaskOutcomeLike
    from fleet.mesh.model import Mesh

SECONDS_DECIMALS = 6  # microseconds
RATIO_DECIMALS = 4
DIRECTIONS = ("out", "in")


def problem(path: Path, tasks: Sequence[str]) -> str | None:
    return None


def label_value(text: str) -> str:
    """A label value escaped as the format says: backslash, double quote and newline."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels(**pairs: str) -> str:
    return "{" + ",".join(f'{k}="{label_value(v)}"' for k, v in pairs.items()) + "}"


def number(value: float, decimals: int = SECONDS_DECIMALS) -> str:
    """`value` rounded to `decimals`, written without float noise or trailing zeros
    (0.008937, not 0.008936999999999999; 1, not 1.0)."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def ms_as_seconds(ms: float) -> str:
    return number(ms / 1000)


def ratio(value: float) -> str:
    return number(value, RATIO_DECIMALS)


def render(outcomes: Sequence[TaskOutcomeLike], path: Path, *,
           now: Callable[[], float] = time.time, pairs: bool = False) -> Iterator[str] | None:
    """The file's text; `pairs`: also the series of every directed pair."""
    meshes, hosts = mesh_sources(outcomes), hosts_reports(outcomes)
    if not meshes and not hosts:
        return None
    return _document(meshes[-1:], hosts, now(), pairs)


def _family(name: str, help_text: str, samples: Iterable[str]) -> Iterator[str]:
    yield f"# HELP {name} {help_text}\n# TYPE {name} gauge\n"
    for sample in samples:
        yield f"{name}{sample}\n"


def _document(meshes: list[MeshSource], hosts: list[HostsReport], written: float,
              pairs: bool) -> Iterator[str]:
    tasks = [s.task for s in meshes] + [r.task for r in hosts]
    yield from _family("fleet_task_ok", "1 when the task's verdict is ok (its exit code is 0).",
                       [f"{labels(task=s.task)} {int(s.verdict.ok)}" for s in meshes]
                       + [f"{labels(task=r.task)} {int(r.exit_code == 0)}" for r in hosts])
    yield from _family("fleet_task_last_run_timestamp_seconds",
                       "When fleet wrote the task's result (Unix time).",
                       [f"{labels(task=task)} {written:.3f}" for task in tasks])
    if hosts:
        yield from _hosts_families(hosts)
    for source in meshes:  # one at most: a run has one mesh task
        yield from _mesh_families(source)
        yield from _host_families(source.mesh)
        if pairs:
            yield from _pair_families(source.mesh)


def _hosts_families(reports: list[HostsReport]) -> Iterator[str]:
    yield from _family("fleet_task_host_ok", "1 when the task succeeded on the host (ok or changed).",
                       [f"{labels(task=r.task, host=h.name)} {int(not h.failed)}"
                        for r in reports for h in r.hosts])
    yield from _family("fleet_task_hosts", "Hosts by the task's outcome.",
                       [f"{labels(task=r.task, status=status)} {count}"
                        for r in reports for status, count in r.counts.items()])


def _mesh_families(source: MeshSource) -> Iterator[str]:
    mesh = source.mesh
    yield from _family("fleet_mesh_verdict", "1 for the mesh's verdict: ok, not-ok or could-not-tell.",
                       [f"{labels(status=status.value)} {int(source.verdict.status is status)}"
                        for status in Status])
    yield from _family("fleet_mesh_hosts", "Hosts in the mesh.", [f" {len(mesh.hosts)}"])
    yield from _family("fleet_mesh_pairs", "Directed pairs in each state.",
                       [f"{labels(state=state)} {count}" for state, count in mesh.counts().items()])
    yield from _family("fleet_mesh_coverage_ratio", "Share of all directed pairs probed.",
                       [f" {ratio(mesh.coverage())}"])
    yield from _family("fleet_mesh_duration_seconds", "How long the mesh task ran.",
                       [f" {source.elapsed:.3f}"])
    loss = overall_loss_pct(mesh)
    yield from _family("fleet_mesh_loss_ratio", "Share of the mesh's tunnel pings lost (pairs that "
                       "could not tell left out).", [] if loss is None else [f" {ratio(loss / 100)}"])
    for name, ms in mesh.rtt_percentiles().items():
        yield from _family(f"fleet_mesh_rtt_{name}_seconds", f"The {name[1:]}th percentile (nearest "
                           "rank) of the RTTs of every tunnel reply of the mesh.",
                           [] if ms is None else [f" {ms_as_seconds(ms)}"])


def _host_families(mesh: Mesh) -> Iterator[str]:
    """Per host and direction (out: it probed, in: it was probed): pairs, pairs ok, loss."""
    n, c = len(mesh.hosts), mesh.columns
    probed = {d: [0] * n for d in DIRECTIONS}
    fine = {d: [0] * n for d in DIRECTIONS}
    sent = {d: [0] * n for d in DIRECTIONS}
    received = {d: [0] * n for d in DIRECTIONS}
    error = STATES.index(PairState.ERROR)  # its pings say nothing about loss
    for row, ok in enumerate(pairs_ok(mesh)):
        ends = (c.src[row], c.dst[row])
        told = c.state[row] != error
        for d, host in zip(DIRECTIONS, ends):
            probed[d][host] += 1
            fine[d][host] += ok
            if told:
                sent[d][host] += c.sent[row]
                received[d][host] += c.received[row]
    names = [label_value(h.name) for h in mesh.hosts]

    def per_host(values: Callable[[str, int], str | None]) -> Iterator[str]:
        for i, name in enumerate(names):
            for d in DIRECTIONS:
                value = values(d, i)
                if value is not None:
                    yield f'{{host="{name}",direction="{d}"}} {value}'

    yield from _family("fleet_mesh_host_up", "1 when the host could probe its peers.",
                       [f'{{host="{name}"}} {int(h.state.value != "error")}'
                        for name, h in zip(names, mesh.hosts)])
    yield from _family("fleet_mesh_host_pairs", "Directed pairs probed from (out) or to (in) the "
                       "host.", per_host(lambda d, i: str(probed[d][i])))
    yield from _family("fleet_mesh_host_pairs_ok", "Of the host's pairs, those the mesh's verdict "
                       "calls ok.", per_host(lambda d, i: str(fine[d][i])))
    yield from _family("fleet_mesh_host_loss_ratio", "Share of the pings of the host's pairs "
                       "lost (pairs that could not tell left out).",
                       per_host(lambda d, i: None if sent[d][i] == 0 else
                                ratio(loss_pct(sent[d][i], received[d][i]) / 100)))


def _pair_samples(mesh: Mesh, value: Callable[[Any], str | None]) -> Iterator[str]:
    # the same few names again and again: escaped once, not once a sample
    escaped = {h.name: label_value(h.name) for h in mesh.hosts}
    for row in mesh.row_values():
        found = value(row)
        if found is not None:
            yield f'{{src="{escaped[row.src]}",dst="{escaped[row.dst]}"}} {found}'


def _pair_families(mesh: Mesh) -> Iterator[str]:
    yield from _family("fleet_mesh_pair_up", "1 when every probe from src to dst was answered.",
                       _pair_samples(mesh, lambda r: "1" if str(r.state) == "ok" else "0"))
    yield from _family("fleet_mesh_pair_loss_ratio", "Share of probes lost from src to dst "
                       "(absent when the probe could not run).",
                       _pair_samples(mesh, lambda r: None if r.loss_pct is None
                                     else ratio(r.loss_pct / 100)))
    yield from _family("fleet_mesh_pair_rtt_avg_seconds", "Average round-trip time from src to "
                       "dst (absent without replies).",
                       _pair_samples(mesh, lambda r: None if r.rtt_avg_ms is None
                                     else ms_as_seconds(r.rtt_avg_ms)))
    yield from _family("fleet_mesh_pair_underlay_up", "1 when every IPv4 ping from src to dst's "
                       "tunnel endpoint was answered (--underlay).",
                       _pair_samples(mesh, lambda r: None if r.underlay is None
                                     or str(r.underlay.state) == "error"
                                     else str(int(str(r.underlay.state) == "ok"))))
    yield from _family("fleet_mesh_pair_mtu_ok", "1 when don't-fragment pings filling the tunnel MTU "
                       "passed from src to dst (--mtu), 0 when they did not.",
                       _pair_samples(mesh, lambda r: None if r.mtu is None or r.mtu.ok is None
                                     else str(int(r.mtu.ok))))
