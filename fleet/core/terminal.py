"""Text from remote hosts made safe to print on a terminal.

A host's output can hold escape sequences (clear the screen, move the cursor, set the title) that
would rewrite what fleet printed about the other hosts. `printable` shows every control character
except newline and tab as a visible escape instead, so what a host said is shown, never obeyed.
"""

from __future__ import annotations

import re

# C0 controls except \t (0x09) and \n (0x0a), DEL, and the C1 controls (0x80-0x9f: in UTF-8 text
# these are real characters, and a terminal reads U+009B as CSI).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def printable(text: str) -> str:
    """`text` with its control characters (but newline and tab) written as `\\x1b`-style escapes.

    A backslash is left as it is: the result is for reading, not for parsing back.
    """
    return _CONTROL.sub(_escape, text)


def one_line(text: str) -> str:
    """`text` made printable and kept on one line (newlines and tabs escaped too), for a table
    cell: a host must not be able to add lines of its own to a report."""
    return printable(text).replace("\n", "\\n").replace("\t", "\\t")
