"""What `fleet run` shows on a terminal: the live tally from progress events, the coloured
matrix and verdicts, and plain text whenever it is not a terminal's."""

import io
import re

import pytest
from rich.console import Console
from test_matrix import full_report, mesh_of

from fleet.cli.display import (
    STATE_STYLES,
    LiveDisplay,
    TaskTally,
    print_report,
    styled,
    terminal_features,
)
from fleet.core.progress import CONNECTED, HOST_DONE, ProgressEvent
from fleet.core.results import VERDICT_STATES, HostOutcome, HostsReport, headline, highlights
from fleet.mesh.report import CELL_STATES, MeshReport, render_mesh, render_mesh_spans

SGR = re.compile(r"\x1b\[([0-9;]*)m")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def event(kind, done, connected, *, host="h1", failed=False, count=None, task="mesh", total=3):
    return ProgressEvent(task, kind, host, done, total, connected, failed, count,
                         "pairs answered" if count is not None else "")


def test_the_tally_counts_connections_hosts_failures_and_the_tasks_own_count():
    clock = Clock()
    tally = TaskTally("mesh", 3, clock)
    assert tally.line() == "mesh  connected 0/3  done 0/3  failed 0  0.0 s"
    tally.add(event(CONNECTED, 0, 1))
    tally.add(event(CONNECTED, 0, 2, host="h2"))
    tally.add(event(HOST_DONE, 1, 2, count=2))
    tally.add(event(HOST_DONE, 2, 2, host="h2", failed=True, count=0))
    clock.now += 1.25
    assert tally.line() == "mesh  connected 2/3  done 2/3  failed 1  pairs answered 2  1.2 s"


def drawn(display, stream):
    """What the terminal was sent so far, without the styles."""
    display.refresh()
    return SGR.sub("", stream.getvalue())


def test_the_live_display_shows_the_counts_going_up_and_clears_itself():
    stream, clock = io.StringIO(), Clock()
    console = Console(file=stream, force_terminal=True, width=120, color_system="standard")
    display = LiveDisplay(console, auto_refresh=False, clock=clock)
    display.begin("setup", 3)
    assert "connected 0/3" in drawn(display, stream)
    display(event(CONNECTED, 0, 1, task="setup"))
    display(event(CONNECTED, 0, 2, host="h2", task="setup"))
    assert "connected 2/3  done 0/3" in drawn(display, stream)
    display(event(HOST_DONE, 1, 2, task="setup"))
    display(event(HOST_DONE, 2, 3, host="h3", failed=True, task="setup"))
    clock.now += 2
    text = drawn(display, stream)
    assert "setup  connected 3/3  done 2/3  failed 1  2.0 s" in text
    display.pause()
    assert display.tally.done == 2
    display(event(HOST_DONE, 1, 3, count=2))  # the next task starts a tally of its own
    display(event(HOST_DONE, 2, 3, host="h2", count=1))
    assert "mesh  connected 3/3  done 2/3  failed 0  pairs answered 3" in drawn(display, stream)
    display.pause()
    tail = stream.getvalue().rsplit("pairs answered 3", 1)[1]
    assert "\x1b[?25h" in tail and tail.endswith("\x1b[2K")  # cursor given back, line erased


def small_mesh(make_hosts, names=("h1", "X.E~", "h3")):
    hosts = make_hosts({name: f"172.31.0.1{i}" for i, name in enumerate(names, 1)})
    reports = {names[0]: full_report(hosts, 0, **{names[2]: {"received": 0}}),
               names[1]: full_report(hosts, 1, **{names[0]: {"received": 2}}),
               names[2]: "cannot connect"}
    return mesh_of(hosts, reports)


def test_the_matrix_cells_and_the_verdict_are_found_and_host_names_are_not(make_hosts):
    mesh = small_mesh(make_hosts)
    rendered = render_mesh_spans(mesh)
    text = rendered.text
    assert text == render_mesh(mesh)
    found = [(text[start:end], state) for start, end, state in rendered.spans]
    assert found == [("NOT OK", "bad"), (".", "ok"), ("X", "unreachable"), ("~", "lossy"),
                     (".", "ok"), ("E", "error"), ("E", "error")]
    rows = text.split("src \\ dst", 1)[1].split("\n\n", 1)[0]
    assert "X.E~" in rows  # the name holds symbols, none of them was taken for a cell
    # Each span is the cell of its pair: row of the source, column of the destination.
    lines = text.split("\n")
    starts = [sum(len(line) + 1 for line in lines[:i]) for i in range(len(lines))]
    cells = [(row - 3, (start - starts[row] - len(lines[2].split("1")[0])) // 2, state)
             for start, _, state in rendered.spans[1:]
             for row in [max(i for i, at in enumerate(starts) if at <= start)]]
    assert cells == [(0, 1, "ok"), (0, 2, "unreachable"), (1, 0, "lossy"), (1, 2, "ok"),
                     (2, 0, "error"), (2, 1, "error")]


def test_the_spans_are_found_where_the_table_or_its_headline_is_shown(make_hosts):
    report = MeshReport(small_mesh(make_hosts), interrupted=False, elapsed=1.0)
    text = report.render()
    spans = highlights(report, text)
    assert len(spans) == 7
    shifted = highlights(report, "fleet says:\n" + text)
    assert shifted == [(s + 12, e + 12, state) for s, e, state in spans]
    assert highlights(report, report.headline) == spans[:1]
    assert highlights(report, "something else") == []


def test_every_state_a_report_shows_has_a_style():
    assert set(VERDICT_STATES) | set(CELL_STATES) == set(STATE_STYLES)


def test_all_ok_is_good(make_hosts):
    hosts = make_hosts({"a": "172.31.0.11", "b": "172.31.0.12"})
    report = MeshReport(mesh_of(hosts, {"a": full_report(hosts, 0), "b": full_report(hosts, 1)}),
                        interrupted=False, elapsed=1.0)
    line = headline(report)
    assert line.startswith("mesh ALL OK: 2 hosts, 2 pairs")
    assert [(line[s:e], state) for s, e, state in highlights(report, line)] == [("ALL OK", "good")]


def test_a_coloured_matrix_reads_the_same_without_its_escapes(make_hosts):
    report = MeshReport(small_mesh(make_hosts), interrupted=False, elapsed=1.0)
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=40, color_system="standard")
    print_report(report, stream, quiet=False, colour=True, console=console)
    coloured = stream.getvalue()
    assert SGR.sub("", coloured) == report.render() + "\n"  # not wrapped to 40 columns either
    assert "\x1b[1;31mNOT OK\x1b[0m" in coloured          # bold red verdict
    assert "\x1b[33m~\x1b[0m" in coloured and "\x1b[35mE\x1b[0m" in coloured
    assert "\x1b[32m.\x1b[0m" in coloured and "\x1b[1;31mX\x1b[0m" in coloured


def test_the_host_table_verdict_is_its_failed_count():
    hosts = (HostOutcome("h1", "changed", None, None, {}, "created"),
             HostOutcome("h2", "failed", "no", "auth", None, "auth: no"))
    report = HostsReport("setup", hosts, 1.0, False)
    assert headline(report) == "setup: 2 hosts: 0 ok, 1 changed, 1 failed (1.0 s)"
    text = report.render()
    assert [(text[s:e], k) for s, e, k in highlights(report, text)] == [("1 failed", "bad")]
    assert styled(text, highlights(report, text)).plain == text


@pytest.mark.parametrize("progress, environ, err, out, live, colour", [
    (True, {}, Tty(), Tty(), True, True),
    (True, {}, Tty(), io.StringIO(), True, False),   # stdout to a file: no colour in it
    (True, {}, io.StringIO(), Tty(), False, True),
    (True, {"NO_COLOR": "1"}, Tty(), Tty(), False, False),
    (True, {"NO_COLOR": ""}, Tty(), Tty(), True, True),   # set but empty: no-color.org says ignore
    (False, {}, Tty(), Tty(), False, False),          # --no-progress
])
def test_live_and_colour_only_on_a_terminal(progress, environ, err, out, live, colour):
    shows = terminal_features(progress, environ, err, out)
    assert (shows.live, shows.colour) == (live, colour)
