"""A tiny framing for remote scripts that answer several questions in one round trip.

The script prints `@@fleet NAME` before each part; `split_sections` cuts the output back into parts.
"""

from __future__ import annotations

MARKER = "@@fleet "


def section(name: str) -> str:
    """The shell line that starts section NAME."""
    return f"echo '{MARKER}{name}'"


def split_sections(output: str) -> dict[str, str]:
    """Map each section's name to its text; text before the first marker is dropped."""
    parts: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith(MARKER):
            current = parts.setdefault(line[len(MARKER):].strip(), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in parts.items()}
