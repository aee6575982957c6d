"""Where a rendered mesh report shows a state, for a terminal to colour: the matrix's cells and
the headline's verdict.

It reads the text render_mesh made rather than re-rendering it, so the table has one writer and
colour cannot change what is shown: a span covers a character of a matrix cell (one of the
report's SYMBOLS, in a column the header numbers) or the headline's verdict (ALL OK, NOT OK, COULD NOT TELL).
Host names in the row labels are never coloured, whatever letters they hold.
"""

from __future__ import annotations

import re

from fleet.core.results import Highlight
from fleet.mesh.report import SYMBOLS
from fleet.mesh.verdict import WORDS, Status

MATRIX_HEADER = "src \\ dst"
_STATE_OF_SYMBOL = {symbol: state.value for state, symbol in SYMBOLS.items()}
_VERDICT = re.compile(r"^mesh (" + "|".join(map(re.escape, WORDS.values())) + "):", re.MULTILINE)
_COLUMN_NUMBER = re.compile(r"\d+")


def mesh_highlights(text: str) -> list[Highlight]:
    """(start, end, state) for each matrix cell in `text` and for the headline's verdict
    (state "good" or "bad")."""
    found: list[Highlight] = []
    for match in _VERDICT.finditer(text):
        found.append((match.start(1), match.end(1), "good" if match.group(1) == WORDS[Status.OK] else "bad"))
    offset = 0
    lines = text.split("\n")
    cells: list[int] = []  # offsets in a row of the matrix's cells, from the header above it
    for line in lines:
        if line.startswith(MATRIX_HEADER):
            cells = [m.end() - 1 for m in _COLUMN_NUMBER.finditer(line, len(MATRIX_HEADER))]
        elif not line.strip():
            cells = []  # the blank line after the matrix ends it
        else:
            for at in cells:
                state = _STATE_OF_SYMBOL.get(line[at]) if at < len(line) else None
                if state is not None:
                    found.append((offset + at, offset + at + 1, state))
        offset += len(line) + 1
    return sorted(found)


__all__ = ["mesh_highlights"]
