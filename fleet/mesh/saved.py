"""A saved mesh report read back: the JSON that `fleet run mesh --json FILE` writes, rebuilt into
the columnar Mesh, so that a run's results can be shown again and compared without a host.

This is the one reader of the format. What the model does not hold (fields added by later
versions, the summary, which the mesh recomputes) is read past, not refused; what the model needs
is checked, and every error names the file and the field (`pairs[12].state`), since a report
edited by hand or cut short should say where it went wrong. A new optional field is read in
`_read_host` or `_read_pair` (and `_read_underlay`, `_read_mtu`), and nowhere else.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

from fleet.core.errors import UsageError
from fleet.core.terminal import one_line
from fleet.mesh.model import (
    MTU_FAILED,
    MTU_OK,
    MTU_UNKNOWN,
    NAN,
    STATES,
    HostState,
    Mesh,
    MeshHost,
    PairColumns,
    PairState,
)
from fleet.mesh.probe import ProbeParams
from fleet.mesh.report import MeshReport

_RTT_FIELDS = ("rtt_min_ms", "rtt_avg_ms", "rtt_max_ms", "rtt_mdev_ms")  # PairColumns.add's order
_PCT_FIELDS = ("rtt_p50_ms", "rtt_p90_ms", "rtt_p99_ms")
_NO_EXTRAS = ((None, None, None), None, None)  # no percentiles, underlay or MTU check
_MAX_COUNT = 0xFFFF  # pings sent or received: the model keeps them in 16 bits, as every run did
# An RTT, percentile or average, in ms: no probe waits more than a minute for a reply (--timeout),
# so an hour is generous, and keeps every sum and the float32 columns far from overflowing.
_MAX_RTT_MS = 3_600_000
_SURROGATE = re.compile("[\ud800-\udfff]")  # half of a UTF-16 pair: JSON's \ud800 escape, no text


class SavedReportError(UsageError):
    """A saved report that cannot be read as a mesh; names the file and, where it applies, the
    field (exit 2, like any bad input)."""

    def __init__(self, message: str, *, file: str, field: str | None = None) -> None:
        self.file = file
        self.field = field
        # One line, and printable on any terminal: the message quotes what the file holds.
        text = one_line(f"{file}: {f'field {field!r}: ' if field else ''}{message}")
        super().__init__(text.encode("utf-8", "backslashreplace").decode("utf-8"))


@dataclass(frozen=True)
class SavedMesh:
    """A mesh read from a file, with what its run said about itself."""

    mesh: Mesh
    interrupted: bool
    elapsed: float | None
    source: str  # the file it came from, as named to fleet

    def report(self) -> MeshReport:
        """The run's report again: the same table, JSON and exit code as when it ran."""
        return MeshReport(self.mesh, interrupted=self.interrupted, elapsed=self.elapsed or 0.0)


def load_mesh_document(path: str | Path) -> SavedMesh:
    """Read the mesh report in `path` (one document, or the mesh of a run's `{"tasks": [...]}`)."""
    name = str(path)
    try:
        with open(path, encoding="utf-8") as stream:
            document = json.load(stream)
    except OSError as exc:
        raise SavedReportError(exc.strerror or str(exc), file=name) from None
    except UnicodeDecodeError as exc:
        raise SavedReportError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=name) from None
    except json.JSONDecodeError as exc:
        raise SavedReportError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                               file=name) from None
    except ValueError as exc:  # a number of more digits than int() converts
        raise SavedReportError(f"not JSON that can be read: {str(exc).split(';')[0]}", file=name) from None
    except RecursionError:
        raise SavedReportError("not a mesh report: lists or objects nested too deeply to read",
                               file=name) from None
    except MemoryError:
        raise SavedReportError("too big to read into memory", file=name) from None
    return mesh_from_document(document, source=name)


def mesh_from_document(document: Any, *, source: str) -> SavedMesh:
    """The mesh in a parsed report (pure: the value in, the SavedMesh out)."""
    reader = _Reader(source)
    return reader.saved_mesh(reader.mesh_document(document))


class _Reader:
    """Checks values field by field; every complaint names `source` and the field's path."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.where = ""  # the mesh document's own path in the file: "" or "tasks[1]."

    def fail(self, field: str | None, message: str) -> SavedReportError:
        return SavedReportError(message, file=self.source, field=field)

    def mesh_document(self, document: Any) -> dict[str, Any]:
        """The mesh document: the whole file, or the mesh of a several-task run (the last one,
        should a run have measured twice)."""
        if isinstance(document, dict) and "tasks" in document and "task" not in document:
            tasks = document["tasks"]
            if not isinstance(tasks, list):
                raise self.fail("tasks", f"expected a list, not {_kind(tasks)}")
            meshes = [i for i, d in enumerate(tasks) if isinstance(d, dict) and d.get("task") == "mesh"]
            if not meshes:
                names = ", ".join(_task_name(d.get("task")) for d in tasks[:20] if isinstance(d, dict))
                names = (names or "none") + (", ..." if len(tasks) > 20 else "")
                raise self.fail(None, f"no mesh report among its tasks ({names}); `fleet run mesh "
                                "--json FILE` writes one")
            return self.mesh_document_at(tasks[meshes[-1]], f"tasks[{meshes[-1]}].")
        return self.mesh_document_at(document, "")

    def mesh_document_at(self, document: Any, where: str) -> dict[str, Any]:
        if not isinstance(document, dict):
            raise self.fail(None, f"expected a JSON object (a mesh report), not {_kind(document)}")
        task = document.get("task")
        if task != "mesh":
            what = ("no task field" if task is None else f"task {task[:40]!r}" if isinstance(task, str)
                    else f"task {_kind(task)}")
            raise self.fail(f"{where}task" if task is not None else None,
                            f"not a mesh report ({what}); `fleet run mesh --json FILE` writes one")
        self.where = where
        return document

    def saved_mesh(self, doc: Mapping[str, Any]) -> SavedMesh:
        probe = self.object(doc, "probe")
        try:
            params = ProbeParams(count=self.integer(probe, "probe.count"),
                                 interval=self.number(probe, "probe.interval_s"),
                                 timeout=self.number(probe, "probe.timeout_s"),
                                 parallel=self.integer(probe, "probe.parallel"),
                                 underlay=self.flag(probe, "probe.underlay"),
                                 mtu_size=self.optional_integer(probe, "probe.mtu_size"))
        except ValueError as exc:
            raise self.fail(self.where + "probe", str(exc).replace("--", "")) from None
        coverage = self.object(doc, "coverage", required=False) or {}
        peers = self.optional_integer(coverage, "coverage.peers_per_host")
        if peers is not None and peers < 1:  # as --peers
            raise self.fail(self.where + "coverage.peers_per_host", f"expected 1 or more, not {peers}")
        hosts = tuple(self._read_host(h, f"hosts[{i}]")
                      for i, h in enumerate(self.array(doc, "hosts")))
        index: dict[str, int] = {}
        for i, host in enumerate(hosts):
            if host.name in index:
                raise self.fail(f"{self.where}hosts[{i}].name", f"host {host.name!r} is listed twice")
            index[host.name] = i
        states = {state.value: state for state in PairState}
        rows = [_well_formed_pair(p, index, states) or self._read_pair(p, f"pairs[{i}]", index)
                for i, p in enumerate(self.array(doc, "pairs"))]
        interrupted = doc.get("interrupted", False)
        if not isinstance(interrupted, bool):
            raise self.fail(self.where + "interrupted", f"expected true or false, not {_kind(interrupted)}")
        elapsed = self.optional_number(doc, "elapsed_s", most=None)
        mesh = Mesh(hosts, self._columns(rows), params, peers,
                    reply_percentiles=self._reply_percentiles(doc))
        return SavedMesh(mesh, interrupted, None if elapsed is None else float(elapsed), self.source)

    def _reply_percentiles(self, doc: Mapping[str, Any]) -> dict[str, float | None]:
        summary = self.object(doc, "summary", required=False) or {}
        figures = self.object(summary, "summary.rtt_ms", required=False) or {}
        return {name: self.optional_number(figures, f"summary.rtt_ms.{name}")
                for name in ("p50", "p90", "p99")}

    def _read_host(self, value: Any, at: str) -> MeshHost:
        host = self.object_value(value, at)
        name = self.text(host, f"{at}.name")
        if not name or any(c.isspace() or not c.isprintable() for c in name):  # the inventory's rule
            raise self.fail(f"{self.where}{at}.name", f"invalid host name {name!r}: names are "
                            "non-empty, without spaces or control characters")
        try:
            ipv4 = IPv4Address(self.text(host, f"{at}.ipv4"))
        except AddressValueError as exc:
            raise self.fail(f"{self.where}{at}.ipv4", str(exc)) from None
        try:
            address = IPv6Address(self.text(host, f"{at}.address"))
        except AddressValueError as exc:
            raise self.fail(f"{self.where}{at}.address", str(exc)) from None
        state = self.choice(host, f"{at}.state", HostState)
        notes = host.get("notes")
        notes = [] if notes is None else notes
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise self.fail(f"{self.where}{at}.notes", "expected a list of texts")
        for i, note in enumerate(notes):
            self.check_text(note, f"{at}.notes[{i}]")
        groups = host.get("groups")  # older reports have none
        groups = [] if groups is None else groups
        if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
            raise self.fail(f"{self.where}{at}.groups", "expected a list of group names")
        for i, group in enumerate(groups):
            self.check_text(group, f"{at}.groups[{i}]")
        return MeshHost(name, ipv4, address, state, error=self.optional_text(host, f"{at}.error"),
                        probe=self.optional_text(host, f"{at}.probe"), notes=tuple(notes),
                        error_kind=self.optional_text(host, f"{at}.error_kind"), groups=tuple(groups))

    def _read_pair(self, value: Any, at: str, index: Mapping[str, int]) -> tuple[Any, ...]:
        """One pair as the arguments of PairColumns.add; `loss_pct` is derived, not read."""
        pair = self.object_value(value, at)
        ends = []
        for end in ("src", "dst"):
            name = self.text(pair, f"{at}.{end}")
            if name not in index:
                raise self.fail(f"{self.where}{at}.{end}", f"host {name!r} is not in the report's hosts")
            ends.append(index[name])
        if ends[0] == ends[1]:
            raise self.fail(f"{self.where}{at}.dst", "a host paired with itself")
        state = self.choice(pair, f"{at}.state", PairState)
        sent = self.count(pair, f"{at}.sent")
        received = self.count(pair, f"{at}.received")
        if received > sent:
            raise self.fail(f"{self.where}{at}.received", f"{received} received of {sent} sent")
        self.agree(state, sent, received, f"{at}.state")
        self.optional_number(pair, f"{at}.loss_pct", most=100)  # derived, not read, but no nonsense
        rtt = tuple(self.optional_number(pair, f"{at}.{name}") for name in _RTT_FIELDS)
        pct = tuple(self.optional_number(pair, f"{at}.{name}") for name in _PCT_FIELDS)
        extras = (pct, self._read_underlay(pair, f"{at}.underlay"), self._read_mtu(pair, f"{at}.mtu"))
        return (ends[0], ends[1], state, sent, received, rtt, self.optional_text(pair, f"{at}.error"),
                extras)

    def _read_underlay(self, pair: Mapping[str, Any], at: str) -> tuple[Any, ...] | None:
        underlay = self.object(pair, at, required=False)
        if underlay is None:
            return None
        sent, received = self.count(underlay, f"{at}.sent"), self.count(underlay, f"{at}.received")
        if received > sent:
            raise self.fail(f"{self.where}{at}.received", f"{received} received of {sent} sent")
        state = self.choice(underlay, f"{at}.state", PairState)
        self.agree(state, sent, received, f"{at}.state")
        return (state, sent, received,
                self.optional_number(underlay, f"{at}.rtt_avg_ms"),
                self.optional_text(underlay, f"{at}.error"))

    def _read_mtu(self, pair: Mapping[str, Any], at: str) -> tuple[Any, ...] | None:
        mtu = self.object(pair, at, required=False)
        if mtu is None:
            return None
        ok = self._get(mtu, f"{at}.ok", required=False)
        if ok not in (True, False, None):
            raise self.fail(f"{self.where}{at}.ok", f"expected true, false or null, not {_kind(ok)}")
        return (ok, self.optional_text(mtu, f"{at}.error"))

    def _columns(self, rows: list[tuple[Any, ...]]) -> PairColumns:
        """The rows in the order Mesh.find needs (by source, then destination), each pair once."""
        rows.sort(key=lambda r: (r[0], r[1]))
        columns = PairColumns()
        last = None
        for src, dst, state, sent, received, rtt, error, (pct, underlay, mtu) in rows:
            if (src, dst) == last:
                raise self.fail(f"{self.where}pairs", f"pair {src} -> {dst} (by host index) is "
                                "listed twice")
            last = (src, dst)
            row = len(columns)
            columns.add(src, dst, state, sent, received, rtt, error)
            if pct != (None, None, None):
                columns.pct[3 * row:3 * row + 3] = array("f", (NAN if v is None else v for v in pct))
            if underlay is not None:
                u_state, u_sent, u_received, u_rtt, u_error = underlay
                columns.u_state[row] = STATES.index(u_state)
                columns.u_sent[row], columns.u_received[row] = min(u_sent, 0xFFFF), min(u_received, 0xFFFF)
                columns.u_rtt[row] = NAN if u_rtt is None else u_rtt
                if u_error is not None:
                    columns.u_errors[row] = u_error
            if mtu is not None:
                ok, mtu_error = mtu
                columns.mtu[row] = MTU_UNKNOWN if ok is None else MTU_OK if ok else MTU_FAILED
                if mtu_error is not None:
                    columns.mtu_errors[row] = mtu_error
        return columns

    # Field readers: `field` is the path below the document, as the error shows it.

    def _get(self, value: Mapping[str, Any], field: str, required: bool = True) -> Any:
        key = field.rsplit(".", 1)[-1]
        if key not in value and required:
            raise self.fail(self.where + field, "missing")
        return value.get(key)

    def object(self, value: Mapping[str, Any], field: str, required: bool = True) -> Any:
        found = self._get(value, field, required)
        if found is None and not required:
            return None
        return self.object_value(found, field)

    def object_value(self, found: Any, field: str) -> dict[str, Any]:
        if not isinstance(found, dict):
            raise self.fail(self.where + field, f"expected an object, not {_kind(found)}")
        return found

    def array(self, value: Mapping[str, Any], field: str) -> list[Any]:
        found = self._get(value, field)
        if not isinstance(found, list):
            raise self.fail(self.where + field, f"expected a list, not {_kind(found)}")
        return found

    def text(self, value: Mapping[str, Any], field: str) -> str:
        found = self._get(value, field)
        if not isinstance(found, str):
            raise self.fail(self.where + field, f"expected a text, not {_kind(found)}")
        return self.check_text(found, field)

    def optional_text(self, value: Mapping[str, Any], field: str) -> str | None:
        found = self._get(value, field, required=False)
        if found is not None and not isinstance(found, str):
            raise self.fail(self.where + field, f"expected a text or null, not {_kind(found)}")
        return None if found is None else self.check_text(found, field)

    def check_text(self, found: str, field: str) -> str:
        """A text that can be printed and written: no half of a UTF-16 pair (`\\ud800` in JSON),
        which no run writes and no UTF-8 output can hold."""
        bad = _SURROGATE.search(found)
        if bad:
            raise self.fail(self.where + field, f"not text: a lone surrogate \\u{ord(bad.group()):04x} "
                            f"at character {bad.start()}")
        return found

    def integer(self, value: Mapping[str, Any], field: str) -> int:
        found = self._get(value, field)
        if not _is_integer(found):
            raise self.fail(self.where + field, f"expected a whole number, not {_kind(found)}")
        return int(found)

    def flag(self, value: Mapping[str, Any], field: str) -> bool:
        """An optional true/false, false when missing (reports written before it existed)."""
        found = self._get(value, field, required=False)
        if found is not None and not isinstance(found, bool):
            raise self.fail(self.where + field, f"expected true or false, not {_kind(found)}")
        return bool(found)

    def optional_integer(self, value: Mapping[str, Any], field: str) -> int | None:
        found = self._get(value, field, required=False)
        if found is not None and not _is_integer(found):
            raise self.fail(self.where + field, f"expected a whole number or null, not {_kind(found)}")
        number: int | None = found
        return number

    def count(self, value: Mapping[str, Any], field: str) -> int:
        found = self.integer(value, field)
        if not 0 <= found <= _MAX_COUNT:
            raise self.fail(self.where + field, f"expected 0 to {_MAX_COUNT} pings, not {found}")
        return found

    def number(self, value: Mapping[str, Any], field: str) -> float:
        found = self._get(value, field)
        if not _is_number(found):
            raise self.fail(self.where + field, f"expected a number, not {_kind(found)}")
        return float(found)

    def optional_number(self, value: Mapping[str, Any], field: str,
                        most: int | None = _MAX_RTT_MS) -> float | None:
        """A number from 0 to `most` (by default an RTT's, in ms; None: no limit), or null."""
        found = self._get(value, field, required=False)
        if found is None:
            return None
        if not _is_number(found) or not 0 <= found <= (math.inf if most is None else most):
            limit = "" if most is None else f" and at most {most:,}"
            raise self.fail(self.where + field, f"expected a number of 0 or more{limit}, or null, "
                            f"not {_kind(found)}")
        return float(found)

    def agree(self, state: PairState, sent: int, received: int, field: str) -> None:
        """A state that its counts give, as the run classified it; `error` goes with any counts
        (a source that failed after its pings, one that sent none)."""
        if state is not PairState.ERROR and state is not _state_of(sent, received):
            given = "nothing sent" if sent == 0 else f"{received} received of {sent} sent"
            raise self.fail(self.where + field, f"{state.value!r} with {given}, which is "
                            f"{(_state_of(sent, received) or PairState.ERROR).value!r}")

    def choice(self, value: Mapping[str, Any], field: str, kind: type[HostState] | type[PairState]) -> Any:
        found = self.text(value, field)
        try:
            return kind(found)
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            raise self.fail(self.where + field, f"unknown state {found!r} (one of {allowed})") from None


def _well_formed_pair(value: Any, index: Mapping[Any, int],
                      states: Mapping[Any, PairState]) -> tuple[Any, ...] | None:
    """A pair as _Reader._read_pair reads it, when it is well formed: the same checks, made
    without naming anything (a million pairs take 2 s, not 10); None sends it to _read_pair,
    which finds the fault and names it."""
    if type(value) is not dict:
        return None
    get = value.get
    try:
        src, dst, state = index.get(get("src")), index.get(get("dst")), states.get(get("state"))
    except TypeError:  # a list or an object where a name belongs
        return None
    sent, received, error, loss = get("sent"), get("received"), get("error"), get("loss_pct")
    if get("underlay") is not None or get("mtu") is not None or get("rtt_p50_ms") is not None:
        return None  # more than the tunnel's numbers: read, and checked, by _read_pair
    rtt = (get("rtt_min_ms"), get("rtt_avg_ms"), get("rtt_max_ms"), get("rtt_mdev_ms"))
    if (src is None or dst is None or src == dst or state is None
            or type(sent) is not int or type(received) is not int
            or not 0 <= received <= sent <= _MAX_COUNT
            or state is not PairState.ERROR and state is not _state_of(sent, received)
            or not (error is None or type(error) is str and not _SURROGATE.search(error))
            or not (loss is None or (type(loss) is float or type(loss) is int) and 0 <= loss <= 100)
            or not all(v is None or (type(v) is float or type(v) is int) and 0 <= v <= _MAX_RTT_MS
                       for v in rtt)):
        return None
    return (src, dst, state, sent, received, tuple(None if v is None else float(v) for v in rtt), error,
            _NO_EXTRAS)


def _state_of(sent: int, received: int) -> PairState | None:
    """The state `sent` and `received` pings give, by fleet.mesh.model.classify's rule (None:
    nothing was sent, which only an error is); at every row of a million, so without its
    PingOutcome."""
    if sent == 0:
        return None
    return PairState.OK if received >= sent else PairState.UNREACHABLE if received == 0 else PairState.LOSSY


def _task_name(task: Any) -> str:
    return task[:40] if isinstance(task, str) else str(task) if task is None else _kind(task)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A JSON number; not NaN or Infinity, which Python's json reads but no measurement gives."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _kind(value: Any) -> str:
    """What a JSON value is, for a message: `a list`, `the text 'x'`, `null`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, (int, float)):
        return repr(value)
    return "a list" if isinstance(value, list) else "an object"
