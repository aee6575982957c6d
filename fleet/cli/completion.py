"""Shell completion of `fleet`'s commands, options and task names, by argcomplete. Enable it in
bash (or zsh with bashcompinit) with:

    eval "$(register-python-argcomplete fleet)"

The shell then runs `fleet` with _ARGCOMPLETE, COMP_LINE and COMP_POINT set; `fleet` builds its
parser as for a real command line (the tasks named after `run` add their options, so
`fleet run mesh --cou<TAB>` completes mesh's --count), lets argcomplete write the candidates to
the shell, and exits without running anything.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

COMPLETING = "_ARGCOMPLETE"  # set by argcomplete's shell function: a completion, not a command


def requested() -> bool:
    return COMPLETING in os.environ


def words() -> list[str]:
    """The words of the line being completed after `fleet` (or `python -m fleet`), up to the
    cursor's word: what the parser is built for."""
    from argcomplete.lexers import split_line

    line = os.environ.get("COMP_LINE", "")
    try:
        point = int(os.environ.get("COMP_POINT", len(line)))
        first = int(os.environ.get(COMPLETING, "1"))  # 1: fleet ...; 2: python PATH ...; 3: python -m fleet
    except ValueError:
        return []
    return list(split_line(line, point)[3][first:])


def complete(parser: argparse.ArgumentParser) -> None:
    """Write the candidates for the line being completed and exit (argcomplete's way)."""
    from argcomplete import autocomplete

    autocomplete(parser)


def set_completer(action: argparse.Action, names: Callable[[argparse.Namespace], list[str]]) -> None:
    """Complete `action`'s values with `names(parsed)` (parsed: the options given so far)."""

    def completer(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
        return [name for name in names(parsed_args) if name.startswith(prefix)]

    action.completer = completer  # type: ignore[attr-defined]  # what argcomplete reads


__all__ = ["complete", "requested", "set_completer", "words"]
