"""The shell scripts that read, apply and remove the tunnel on a host, their parsers, and what
happened, in words, from the state read afterwards.

Pure: steps and states in, shell text out; script output in, TunnelState and ApplyOutcome out.

All or nothing. The apply script first checks that the device is still the one that was read (its
ifindex, or its absence), then runs the steps in order; when one fails (or the script is
stopped), it undoes the steps already done in reverse order (deletes a tunnel it created,
restores addresses, MTU, link state and alias it changed) and prints the state again, so the
caller can say what was rolled back after reading it, not before.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from dataclasses import replace as replace_state

from fleet.core.sections import section, split_sections
from fleet.core.transport import CommandResult
from fleet.isatap import TUNNEL_NAME
from fleet.tunnel.iproute import ABSENT, ParseError, Route, TunnelState, parse_routes, parse_tunnel
from fleet.tunnel.plan import StateUnreadable, Step

STALE_STATUS = 3       # the apply script's exit status when sit1 changed since it was read
STALE_SECTION = "stale"  # the section the script's guard prints then, on stdout


# -- reading the state ---------------------------------------------------------------------------

def read_state_script(name: str = TUNNEL_NAME, *, routes_when_absent: bool = True) -> str:
    """Shell lines that print the tunnel's state as sections: `sysfs` (present, absent, or no
    sysfs), then for a present device the link and address JSON with their exit statuses. A
    failing `ip` is reported as such, never read as "no tunnel"."""
    dev = shlex.quote(name)
    routes = [section("routes"), "ip -j -6 route show 2>&1; rc=$?", section("routes-status"),
              'echo "$rc"']
    return "\n".join([
        section("sysfs"),
        f"if [ ! -d /sys/class/net ]; then echo no-sysfs; "
        f"elif [ -e /sys/class/net/{dev} ]; then echo present; else echo absent; fi",
        f"if [ -e /sys/class/net/{dev} ]; then",
        section("link"), f"ip -j -d link show dev {dev} 2>&1; rc=$?", section("link-status"),
        'echo "$rc"',
        section("addr"), f"ip -j addr show dev {dev} 2>&1; rc=$?", section("addr-status"),
        'echo "$rc"',
        *routes,
        *(["else", *routes] if routes_when_absent else []),
        "fi",
    ])


def parse_state(parts: dict[str, str], name: str = TUNNEL_NAME) -> TunnelState:
    """The TunnelState from read_state_script's sections; StateUnreadable when it cannot tell."""
    presence = parts.get("sysfs", "").strip()
    routes = _routes(parts)
    if presence == "absent":
        return replace_state(ABSENT, routes=routes)
    if presence != "present":
        why = "the host has no /sys/class/net" if presence == "no-sysfs" else \
            "the state script printed nothing it could read"
        raise StateUnreadable(f"cannot read the state of {name}: {why}")
    texts = {}
    for part, command in (("link", f"ip -j -d link show dev {name}"),
                          ("addr", f"ip -j addr show dev {name}")):
        status, text = parts.get(f"{part}-status", "").strip(), parts.get(part, "")
        if status != "0":
            said = (text.strip().splitlines() or ["no output"])[-1]
            raise StateUnreadable(f"cannot read the state of {name}: `{command}` failed "
                                  f"(exit status {status or 'unknown'}): {said}")
        texts[part] = text
    try:
        state = parse_tunnel(texts["link"], texts["addr"])
    except ParseError as exc:
        raise StateUnreadable(f"cannot read the state of {name}: {exc} (fleet needs iproute2 with "
                              "JSON output, `ip -j`)") from exc
    if not state.exists:
        raise StateUnreadable(f"cannot read the state of {name}: sysfs has it, `ip -j` shows nothing")
    return replace_state(state, routes=routes)


def _routes(parts: dict[str, str]) -> tuple[Route, ...] | None:
    """The host's IPv6 routes, None when they could not be read (IPv6 off, no `ip -j`)."""
    if parts.get("routes-status", "").strip() != "0":
        return None
    try:
        return parse_routes(parts.get("routes", ""))
    except ParseError:
        return None


# -- changing it ---------------------------------------------------------------------------------

def _guard(state: TunnelState, name: str) -> str:
    """A line that stops the script unless the device is still the one read: it prints the
    STALE_SECTION marker (what `went_stale` reads) and a sentence for people, and exits
    STALE_STATUS."""
    dev = shlex.quote(name)
    if not state.exists:
        check = f"[ ! -e /sys/class/net/{dev} ]"
    else:
        check = f'[ "$(cat /sys/class/net/{dev}/ifindex 2>/dev/null)" = {state.ifindex} ]'
    return (f"{check} || {{ {section(STALE_SECTION)}; "
            f"echo 'fleet: {name} changed since it was read; nothing done' >&2; "
            f"exit {STALE_STATUS}; }}")


def went_stale(result: CommandResult) -> bool:
    """The apply or remove script stopped at its guard: the device is no longer the one read and
    nothing was done. Read from the guard's own marker and exit status, never from its sentence
    (a step that fails with exit status 3 is not this)."""
    return result.exit_status == STALE_STATUS and STALE_SECTION in split_sections(result.stdout)


def apply_script(steps: tuple[Step, ...], before: TunnelState, name: str = TUNNEL_NAME) -> str:
    """A script that applies the steps all or nothing, then prints the resulting state.

    Sections: `applied` (how many steps succeeded), `undo` (for each undone step `ok N` or
    `failed N` and what the command said), then the state (read_state_script).
    """
    lines = [_guard(before, name), "n=0", "undo() {", "  " + section("undo")]
    for number in range(len(steps), 0, -1):
        undo = steps[number - 1].undo
        if undo:
            lines.append(f'  if [ "$n" -ge {number} ]; then if {shlex.join(undo)} 2>&1; '
                         f'then echo "ok {number}"; else echo "failed {number}"; fi; fi')
    lines += ["  :", "}",
              # stopped midway (timeout, Ctrl-C, the connection gone): undo what was done, then
              # stop; with nobody left to read what it says, a write must not end the undo
              "trap 'trap \"\" PIPE; undo; exit 143' TERM HUP INT"]
    chain = " && ".join(f"{step.command} && n={number}" for number, step in enumerate(steps, 1))
    lines += [f"{chain}", "applied_rc=$?",
              f'if [ "$n" -lt {len(steps)} ]; then undo; fi',
              "trap - TERM HUP INT",
              section("applied"), 'echo "$n"',
              read_state_script(name),
              'exit "$applied_rc"']
    return "\n".join(lines)


def remove_script(step: Step, before: TunnelState, name: str = TUNNEL_NAME) -> str:
    """Remove the device (if it is still the one read), then print the state again."""
    return "\n".join([_guard(before, name), step.command, "removed_rc=$?", read_state_script(name),
                      'exit "$removed_rc"'])


@dataclass(frozen=True)
class ApplyOutcome:
    """What an apply script reports: how many steps were done, which undos ran and how they
    went, and the state it read at the end."""

    applied: int
    undone: tuple[tuple[int, bool], ...]  # (step number, it worked), in the order they ran
    undo_output: tuple[str, ...]
    after: TunnelState


def parse_apply(parts: dict[str, str], name: str = TUNNEL_NAME) -> ApplyOutcome:
    applied_text = parts.get("applied", "").strip()
    if not applied_text.isdigit():
        raise StateUnreadable("the apply script did not say how far it got")
    undone, said = [], []
    for line in parts.get("undo", "").splitlines():
        word, _, number = line.partition(" ")
        if word in ("ok", "failed") and number.strip().isdigit():
            undone.append((int(number), word == "ok"))
        elif line.strip():
            said.append(line.strip())
    return ApplyOutcome(int(applied_text), tuple(undone), tuple(said), parse_state(parts, name))


def compared(before: TunnelState, now: TunnelState, name: str = TUNNEL_NAME) -> str:
    """The state read again after a change, set against the state before it, in words."""
    if now.same_configuration(before):
        return f"{name} is as it was (read again): {before.describe()}"
    return f"{name} is now {now.describe()} (read again), it was {before.describe()}"


def failure_account(steps: tuple[Step, ...], before: TunnelState, outcome: ApplyOutcome,
                    name: str = TUNNEL_NAME) -> str:
    """What happened to the host after a failed apply, in words, from the state read afterwards:
    rolled back (and verified), or exactly what is left."""
    done = steps[:outcome.applied]
    failed_step = steps[outcome.applied].description if outcome.applied < len(steps) else None
    where = f"at '{failed_step}'" if failed_step else "after the last step"
    if not done:
        return f"failed {where}; nothing was changed ({name} {before.describe()})"
    undone = [steps[number - 1].description for number, ok in outcome.undone if ok]
    not_undone = [steps[number - 1].description for number, ok in outcome.undone if not ok]
    irreversible = [s.description for s in done if not s.reversible]
    if outcome.after.same_configuration(before):
        how = f"undid: {'; '.join(undone)}" if undone else "nothing to undo"
        return f"failed {where}; rolled back ({how}); {compared(before, outcome.after, name)}"
    parts = [f"failed {where}; NOT fully rolled back: {compared(before, outcome.after, name)}"]
    if irreversible:
        parts.append(f"cannot be undone: {'; '.join(irreversible)}")
    if not_undone:
        parts.append(f"undo failed for: {'; '.join(not_undone)}")
    return "; ".join(parts)
