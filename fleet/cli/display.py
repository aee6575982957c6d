"""What `fleet run` shows on a terminal: a live line per running task on stderr, and the reports
in colour.

Both use rich (it measures the terminal, rewrites the live line in place and knows when not to
colour), imported only when a terminal gets them: `import fleet.cli` stays light, and plain
output (a pipe, a file, NO_COLOR, --no-progress) never loads it. What the display counts is kept
apart from drawing it (TaskTally), so the counting is tested without a terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from fleet.core.progress import CONNECTED, ProgressEvent
from fleet.core.results import Highlight, Report, headline, highlights

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

# The style of each state a report highlights (core: VERDICT_STATES; the mesh: CELL_STATES).
STATE_STYLES = {"ok": "green", "lossy": "yellow", "unreachable": "bold red", "error": "magenta",
                "good": "bold green", "bad": "bold red"}


@dataclass(frozen=True)
class TerminalFeatures:
    """What this run's output may use: the live display (stderr) and colour (the reports' stream)."""

    live: bool
    colour: bool


def terminal_features(progress: bool, environ: Mapping[str, str], stderr: IO[str],
                      report_stream: IO[str]) -> TerminalFeatures:
    """Plain output unless it goes to a terminal, NO_COLOR is unset (https://no-color.org: set
    and not empty) and --no-progress was not given."""
    wanted = progress and not environ.get("NO_COLOR")
    return TerminalFeatures(live=wanted and _is_terminal(stderr),
                            colour=wanted and _is_terminal(report_stream))


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


class TaskTally:
    """One task's counts as its progress events come in: hosts connected, done, failed, and the
    sum of the count the task reports per host (the mesh: pairs answered)."""

    def __init__(self, task: str, total: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.task, self.total, self._clock = task, total, clock
        self.started = clock()
        self.connected = self.done = self.failed = 0
        self.count: int | None = None
        self.count_label = ""

    def add(self, event: ProgressEvent) -> None:
        self.total, self.connected = event.total, event.connected
        if event.kind == CONNECTED:
            return
        self.done = event.done
        self.failed += event.failed
        if event.count is not None:
            self.count = (self.count or 0) + event.count
            self.count_label = event.count_label or self.count_label

    @property
    def elapsed(self) -> float:
        return self._clock() - self.started

    def line(self) -> str:
        """`mesh  connected 4/4  done 3/4  failed 0  pairs answered 9  1.2 s`"""
        parts = [self.task, f"connected {self.connected}/{self.total}",
                 f"done {self.done}/{self.total}", f"failed {self.failed}"]
        if self.count is not None:
            parts.append(f"{self.count_label or 'counted'} {self.count}")
        parts.append(f"{self.elapsed:.1f} s")
        return "  ".join(parts)


class LiveDisplay:
    """The running task's tally, redrawn in place on a terminal (rich's Live, on stderr).

    It is a progress listener (`display(event)`). `begin(task, total)` shows a task from its
    start; `pause()` clears the line so that a report can be printed; the next `begin` or event
    draws it again. Redrawing is rich's timer's (`refresh_per_second`), not each event's: a
    thousand hosts finishing at once cost a thousand additions, not a thousand redraws.
    """

    def __init__(self, console: Console, *, auto_refresh: bool = True, refresh_per_second: float = 8,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.tally: TaskTally | None = None
        self._auto_refresh, self._rate, self._clock = auto_refresh, refresh_per_second, clock
        self._live: Live | None = None

    def begin(self, task: str, total: int) -> None:
        self.tally = TaskTally(task, total, self._clock)
        self._show()

    def __call__(self, event: ProgressEvent) -> None:
        if self.tally is None or self.tally.task != event.task:
            self.tally = TaskTally(event.task, event.total, self._clock)
        self.tally.add(event)
        self._show()

    def renderable(self) -> Text:
        from rich.text import Text

        if self.tally is None:
            return Text("")
        text = Text(self.tally.line(), no_wrap=True, overflow="ellipsis")
        text.stylize("bold", 0, len(self.tally.task))
        if self.tally.failed:
            start = text.plain.find(f"failed {self.tally.failed}")
            text.stylize(STATE_STYLES["bad"], start, start + len(f"failed {self.tally.failed}"))
        return text

    def refresh(self) -> None:
        """Redraw now (the timer does it otherwise)."""
        if self._live is not None:
            self._live.refresh()

    def pause(self) -> None:
        """Clear the line; the next begin() or event draws it again."""
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()

    def _show(self) -> None:
        if self._live is None:
            from rich.live import Live

            self._live = Live(get_renderable=self.renderable, console=self.console, transient=True,
                              auto_refresh=self._auto_refresh, refresh_per_second=self._rate,
                              redirect_stdout=False, redirect_stderr=True)
            self._live.start()


def stderr_console(stream: IO[str]) -> Console:
    from rich.console import Console

    return Console(file=stream, highlight=False)


def styled(text: str, spans: list[Highlight]) -> Text:
    """`text` with each highlighted span in its state's style (unknown states left plain)."""
    from rich.text import Text

    shown = Text(text)
    for start, end, state in spans:
        style = STATE_STYLES.get(state)
        if style is not None:
            shown.stylize(style, start, end)
    return shown


def print_report(report: Report, stream: IO[str], *, quiet: bool, colour: bool,
                 console: Any = None) -> None:
    """The report (its headline only with `quiet`), coloured where it shows states when `colour`."""
    text = headline(report) if quiet else report.render()
    if not colour:
        print(text, file=stream, flush=True)
        return
    if console is None:
        from rich.console import Console

        console = Console(file=stream, highlight=False)
    console.print(styled(text, highlights(report, text)), soft_wrap=True, markup=False,
                  emoji=False, highlight=False)
    stream.flush()


__all__ = ["STATE_STYLES", "LiveDisplay", "TaskTally", "TerminalFeatures", "print_report",
           "stderr_console", "styled", "terminal_features"]
