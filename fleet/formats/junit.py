"""JUnit XML, the schema Jenkins, GitLab and pytest share: a test suite per task, a test case per
host (setup, teardown) or per directed pair (mesh, named `SRC -> DST`), and for a mesh one case
`verdict` for the run as a whole.

The mesh's cases render its one verdict (fleet.mesh.verdict): a pair that lost tunnel pings, or
whose MTU check failed, is a <failure> carrying its numbers (and, under --underlay, what the IPv4
ping said); a pair whose probe or MTU check could not tell is an <error> (could not tell is not a
failure of the network); the `verdict` case fails (not ok) or errs (could not tell) with the
verdict's reasons, so a run whose pairs all pass but that did not verify what it promised (a
missing pair, a single host) is not a green suite. The findings attached to a pair are those about
what failed on it (tunnel findings on a tunnel failure, MTU findings on an MTU failure) naming one
of its hosts. A host stopped by an interrupted run is <skipped>. Written as text a case at a time:
a 1,000-host mesh is a million cases.

So that CI tools (GitLab's test reports, Jenkins, test-report actions) group a mesh by host, each
source host has a classname of its own: the case `h1 -> h2` is in `fleet.mesh.h1`, and the
`verdict` case in `fleet.mesh`. A pair's time is what one of its probes took on average: a
reply's round-trip time, or the wait for a lost probe (--timeout), so
(average RTT x replies + timeout x probes lost) / probes sent, in seconds; 0 for a pair whose
probe could not run. The pairs were probed in parallel, so their times do not add up to the
run's: the suite's time is the mesh task's elapsed time, and so is the `verdict` case's (the run
as a whole). Setup and teardown cases have no time of their own (0).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet.core.results import HostsReport
from fleet.formats.sources import MeshSource, hosts_reports, mesh_source, mesh_sources
from fleet.formats.text import xml_attr, xml_text
from fleet.mesh.verdict import PairFindings, Status, pair_judgement, pair_statuses

if TYPE_CHECKING:
    from fleet.formats import TaskOutcomeLike

SUITE_PREFIX = "fleet."


def problem(path: Path, tasks: Sequence[str]) -> str | None:
    return None


def render(outcomes: Sequence[TaskOutcomeLike], path: Path) -> Iterator[str] | None:
    if not mesh_sources(outcomes) and not hosts_reports(outcomes):
        return None
    return _document(outcomes)


def _document(outcomes: Sequence[TaskOutcomeLike]) -> Iterator[str]:
    yield '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="fleet">\n'
    for outcome in outcomes:
        source = mesh_source(outcome)
        if source is not None:
            yield from _mesh_suite(source)
        elif isinstance(outcome.report, HostsReport):
            yield from _hosts_suite(outcome.report)
    yield "</testsuites>\n"


def _suite_open(name: str, tests: int, failures: int, errors: int, skipped: int, time: float) -> str:
    return (f"  <testsuite name={xml_attr(SUITE_PREFIX + name)} tests=\"{tests}\" "
            f"failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" "
            f"time=\"{time:.3f}\">\n")


def _case(classname: str, name: str, body: str = "", time: float = 0.0) -> str:
    head = (f"    <testcase classname={xml_attr(classname)} name={xml_attr(name)} "
            f"time=\"{time:.6f}\"")
    return f"{head}/>\n" if not body else f"{head}>\n{body}    </testcase>\n"


def _element(tag: str, message: str, text: str, kind: str | None = None) -> str:
    kind_attr = f" type={xml_attr(kind)}" if kind else ""
    return f"      <{tag} message={xml_attr(message)}{kind_attr}>{xml_text(text)}</{tag}>\n"


def _hosts_suite(report: HostsReport) -> Iterator[str]:
    counts = report.counts
    interrupted = [h for h in report.hosts if h.error_kind == "interrupted"]
    yield _suite_open(report.task, len(report.hosts), counts["failed"] - len(interrupted), 0,
                      len(interrupted), report.elapsed)
    classname = SUITE_PREFIX + report.task
    for host in report.hosts:
        if host.error_kind == "interrupted":
            body = f"      <skipped message={xml_attr(host.error or 'interrupted')}/>\n"
        elif host.failed:
            body = _element("failure", f"{host.error_kind}: {host.error}", host.detail,
                            host.error_kind)
        else:
            body = f"      <system-out>{xml_text(f'{host.status}: {host.detail}')}</system-out>\n"
        yield _case(classname, host.name, body)
    yield "  </testsuite>\n"


def _mesh_suite(source: MeshSource) -> Iterator[str]:
    mesh, verdict = source.mesh, source.verdict
    counts = pair_statuses(mesh)
    run_failed = verdict.status is Status.NOT_OK
    run_unknown = verdict.status is Status.COULD_NOT_TELL
    yield _suite_open(source.task, mesh.pair_count + 1, counts[Status.NOT_OK] + run_failed,
                      counts[Status.COULD_NOT_TELL] + run_unknown, 0, source.elapsed)
    classname = SUITE_PREFIX + source.task
    yield _verdict_case(source, classname)
    about = PairFindings(verdict.findings)
    # a classname per source host, so CI tools group the cases by host
    sources = {h.name: f"{classname}.{h.name}" for h in mesh.hosts}
    timeout = mesh.params.timeout
    for values in mesh.row_values():
        src, dst, state, mtu = values.src, values.dst, str(values.state), values.mtu
        name, time = f"{src} -> {dst}", pair_seconds(values, timeout)
        judged = pair_judgement(state, None if mtu is None else mtu.ok, mtu is not None)
        if judged is Status.OK:
            yield _case(sources[src], name, time=time)
            continue
        tunnel_failed = state != "ok"
        mtu_failed = mtu is not None and mtu.ok is not True and not tunnel_failed
        text = pair_text(values, about.about(src, dst, tunnel_failed=tunnel_failed,
                                             mtu_failed=mtu_failed))
        if state == "error":
            body = _element("error", f"{name}: error (could not tell): {values.error}", text, "error")
        elif tunnel_failed:
            body = _element("failure", f"{name}: {state}, {values.loss_pct:g}% loss", text, state)
        elif judged is Status.NOT_OK:
            assert mtu is not None
            body = _element("failure", f"{name}: mtu {mtu.size} failed: small pings pass, "
                            "full-size ones (don't fragment) do not", text, "mtu")
        else:
            assert mtu is not None
            body = _element("error", f"{name}: mtu {mtu.size} could not tell: {mtu.error}", text,
                            "mtu")
        yield _case(sources[src], name, body, time)
    yield "  </testsuite>\n"


def _verdict_case(source: MeshSource, classname: str) -> str:
    """The run as a whole: passes only when the mesh's verdict is ok."""
    verdict = source.verdict
    lines = [f"verdict: {verdict.text}"] + [f"{f.kind}: {f.text}" for f in verdict.findings]
    text = "\n".join(lines) + "\n"
    if verdict.status is Status.OK:
        return _case(classname, "verdict", f"      <system-out>{xml_text(text)}</system-out>\n",
                     source.elapsed)
    tag = "failure" if verdict.status is Status.NOT_OK else "error"
    return _case(classname, "verdict", _element(tag, verdict.text, text, verdict.status.value),
                 source.elapsed)


def pair_seconds(values: Any, timeout: float) -> float:
    """What one of a pair's probes took on average, in seconds: a reply its RTT, a lost probe
    the wait for it (`timeout`); 0 when no probe ran (its state is error)."""
    sent: int = values.sent
    received = min(int(values.received), sent)
    if str(values.state) == "error" or sent == 0:
        return 0.0
    answered = 0.0 if values.rtt_avg_ms is None else values.rtt_avg_ms / 1000 * received
    return (answered + timeout * (sent - received)) / sent


def pair_text(values: Any, findings: Sequence[Any]) -> str:
    """A pair's numbers (a PairRow), one per line, then the findings."""
    v, loss = values, values.loss_pct
    lines = [f"pair: {v.src} -> {v.dst}", f"state: {v.state}", f"sent: {v.sent}",
             f"received: {v.received}", f"loss: {'-' if loss is None else f'{loss:g}%'}"]
    if v.rtt_avg_ms is not None:
        lines.append(f"rtt ms: min {v.rtt_min_ms} avg {v.rtt_avg_ms} max {v.rtt_max_ms} "
                     f"mdev {v.rtt_mdev_ms}")
    if v.underlay is not None:
        u = v.underlay
        lines.append(f"underlay (IPv4 ping of the peer's tunnel endpoint): {u.state}, "
                     + ("loss -" if u.loss_pct is None else f"{u.loss_pct:g}% loss")
                     + (f", error: {u.error}" if u.error else ""))
    if v.mtu is not None:
        lines.append(f"mtu {v.mtu.size} (don't fragment): " + {
            True: "ok", False: "failed", None: "could not tell"}[v.mtu.ok]
            + (f": {v.mtu.error}" if v.mtu.error else ""))
    if v.error:
        lines.append(f"error: {v.error}")
    for finding in findings:
        lines.append(f"finding ({getattr(finding, 'kind', '?')}): {getattr(finding, 'text', '')}")
    return "\n".join(lines) + "\n"
