"""JUnit XML, the schema Jenkins, GitLab and pytest share: a test suite per task, a test case per
host (setup, teardown) or per directed pair (mesh, named `SRC -> DST`).

A lossy or unreachable pair is a <failure> carrying its numbers; a pair whose probe could not run
is an <error> (could not tell is not a failure of the network); a host stopped by an interrupted
run is <skipped>. Any diagnosis findings about a failing pair's hosts are added to its text.
Written as text a case at a time: a 1,000-host mesh is a million cases.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet.core.results import HostsReport
from fleet.formats.sources import MeshSource, findings_about, hosts_reports, mesh_source, mesh_sources
from fleet.formats.text import xml_attr, xml_text

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


def _case(classname: str, name: str, body: str = "") -> str:
    head = f"    <testcase classname={xml_attr(classname)} name={xml_attr(name)} time=\"0\""
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
    mesh = source.mesh
    counts = mesh.counts()
    yield _suite_open(source.task, mesh.pair_count, counts["lossy"] + counts["unreachable"],
                      counts["error"], 0, source.elapsed)
    classname = SUITE_PREFIX + source.task
    for values in mesh.row_values():
        src, dst, state = values.src, values.dst, str(values.state)
        name = f"{src} -> {dst}"
        if state == "ok":
            yield _case(classname, name)
            continue
        text = pair_text(values, findings_about(source.findings, src, dst))
        if state == "error":
            body = _element("error", f"{name}: error (could not tell): {values.error}", text, "error")
        else:
            body = _element("failure", f"{name}: {state}, {values.loss_pct:g}% loss", text, state)
        yield _case(classname, name, body)
    yield "  </testsuite>\n"


def pair_text(values: Any, findings: Sequence[Any]) -> str:
    """A pair's numbers (a PairRow), one per line, then the findings."""
    v, loss = values, values.loss_pct
    lines = [f"pair: {v.src} -> {v.dst}", f"state: {v.state}", f"sent: {v.sent}",
             f"received: {v.received}", f"loss: {'-' if loss is None else f'{loss:g}%'}"]
    if v.rtt_avg_ms is not None:
        lines.append(f"rtt ms: min {v.rtt_min_ms} avg {v.rtt_avg_ms} max {v.rtt_max_ms} "
                     f"mdev {v.rtt_mdev_ms}")
    if v.underlay is not None:
        lines.append(f"underlay (IPv4): {v.underlay.state}, {v.underlay.loss_pct}% loss")
    if v.mtu is not None:
        lines.append(f"mtu {v.mtu.size}: " + {True: "ok", False: "failed", None: "could not tell"}[
            v.mtu.ok])
    if v.error:
        lines.append(f"error: {v.error}")
    for finding in findings:
        lines.append(f"finding ({getattr(finding, 'kind', '?')}): {getattr(finding, 'text', '')}")
    return "\n".join(lines) + "\n"
