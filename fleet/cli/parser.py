"""The argparse parser of `fleet` and of each of its commands: a usage error is answered by the
parser of the command it belongs to, on one line, with the closest name when there is one.

    fleet run mesh --cout 5   ->  usage: fleet run ...
                                  fleet run: error: unknown option --cout; did you mean --count?
    fleet reprot              ->  usage: fleet ...
                                  fleet: error: unknown command 'reprot'; did you mean report?

argparse itself hands an unknown option of `fleet run` up to `fleet`, which reports it with its
own usage, and names no close match. A parser may also end its --help with a section computed
only when the help is shown (`fleet run --help` lists the tasks: loading them is not free).
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable, Iterable, Sequence
from typing import Any


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """'; did you mean X?' for the candidate closest to `word` (difflib), '' for none close."""
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f"; did you mean {close[0]}?" if close else ""


class CommandParser(argparse.ArgumentParser):
    """argparse.ArgumentParser, its subcommands' parsers too (add_subparsers makes them of the
    parent's class), with errors that name the right command and the closest match.

    `more_help`: text appended to --help, computed only when the help is shown.
    `check`: what is wrong with a parse of this command (None: nothing), asked before the words
    no parser took are reported: `fleet run mehs --count 2` is a misspelt task, whose options
    are then unknown too.
    """

    def __init__(self, *args: Any, more_help: Callable[[], str] | None = None,
                 check: Callable[[argparse.Namespace], str | None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._more_help, self._check = more_help, check

    def format_help(self) -> str:
        text = super().format_help()
        return text + "\n" + self._more_help() if self._more_help is not None else text

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        """As argparse's, except that the command's own check comes first and what no parser took
        is reported by the command it follows."""
        options, extras = self.parse_known_args(args, namespace)
        owner = self.command_parser(options)
        problem = owner._check(options) if owner._check is not None else None
        if problem:
            owner.error(problem)
        if extras:
            owner.error(owner.unknown_arguments(extras))
        return options

    def command_parser(self, options: argparse.Namespace) -> CommandParser:
        """The parser of the innermost command `options` chose (`fleet lab up`: lab up's)."""
        parser: argparse.ArgumentParser = self
        while True:
            commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            chosen = commands[0].choices.get(getattr(options, commands[0].dest, None) or "") \
                if commands else None
            if not isinstance(chosen, CommandParser):
                return parser if isinstance(parser, CommandParser) else self
            parser = chosen

    def unknown_arguments(self, extras: Sequence[str]) -> str:
        """One line about what this parser did not take: the unknown options with their closest
        match (the words after one are taken for its value), else the words left over."""
        flags = [word.split("=", 1)[0] for word in extras if _is_flag(word)]
        known = list(self._option_string_actions)
        if flags:
            return "; ".join(f"unknown option {flag}{did_you_mean(flag, known)}" for flag in flags)
        return f"unexpected argument{'s' if len(extras) > 1 else ''}: {' '.join(extras)}"

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """A value not among the choices (a command, --probe's methods), with the closest one."""
        if action.choices is None or value in action.choices:
            return
        names = [str(choice) for choice in action.choices]
        if isinstance(action, argparse._SubParsersAction):
            raise argparse.ArgumentError(None, f"unknown command {value!r}"
                                         f"{did_you_mean(str(value), names)}")
        raise argparse.ArgumentError(action, f"invalid choice: {value!r} (choose from "
                                     f"{', '.join(names)}){did_you_mean(str(value), names)}")


def _is_flag(word: str) -> bool:
    return word.startswith("-") and len(word) > 1 and not word[1:2].isdigit()
