"""Putting a lab back as `up` left it, without booting it again: `reset(workdir=...)`.

What a session of tests or a user may have changed, and what reset does about it:
- the lab's network namespace: every nftables table removed (`nft flush ruleset`), every
  queueing discipline added to a link removed (the kernel's default comes back), every tap at
  MTU 1500, up, on the bridge;
- the inventory (hosts, groups, defaults, known_hosts) written again from the lab's state;
- a guest whose QEMU is gone, or whose sshd gives no banner, or that cannot be reset over SSH:
  booted again (same host key, same forwarded port);
- every other guest, over SSH: every process that was not there at boot ended (only init,
  the sshd listener and the reset's own session stay), every link but lo, eth0 and sit0
  deleted (sit1 and its routes and PRL with it), the global addresses on lo removed,
  /usr/local and the contents of /tmp removed. The script reads the state back at the end
  and fails when something is left, and the guest is then booted again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleet.lab.boot import Progress, boot_guests
from fleet.lab.commands import find_command, require_command, run
from fleet.lab.errors import LabError
from fleet.lab.guests import guest_files, qemu_process
from fleet.lab.image import build_image
from fleet.lab.info import LabInfo
from fleet.lab.inventory import InventoryHost, write_inventory
from fleet.lab.keys import public_key_line
from fleet.lab.lab import client_key_path, forwarder_process, inventory_dir, status
from fleet.lab.plan import LabPlan, plan_lab
from fleet.lab.processes import is_alive, stop
from fleet.lab.readiness import wait_for_banners
from fleet.lab.remote import RemoteResult, run_script
from fleet.lab.state import LabState, load_state

TAP_MTU = 1500
BANNER_TIMEOUT = 10.0  # a running guest whose sshd says nothing for this long is booted again
SCRIPT_TIMEOUT = 60.0

# Run by dash on the guest, as root. It must not end its own session: the ancestors of $$ stay.
GUEST_RESET = r"""
keep=" 1 $(cat /run/sshd.pid 2>/dev/null) "
p=$$
while [ -n "$p" ] && [ "$p" -gt 1 ]; do
    keep="$keep$p "
    p=$(awk '/^PPid:/ { print $2 }' "/proc/$p/status")
done
for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    case "$keep" in *" $pid "*) continue ;; esac
    [ -e "$dir/exe" ] || continue  # a kernel thread
    kill -9 "$pid" 2>/dev/null
done
links() { ip -o link show | sed 's/^[0-9]*: \([^:@]*\).*/\1/' | grep -v -x -e lo -e eth0 -e sit0; }
for link in $(links); do
    ip link del "$link"
done
ip addr flush dev lo scope global
rm -rf /usr/local /tmp/* /tmp/.[!.]* 2>/dev/null
left="$(links)$(ip -o addr show dev lo scope global)$(ls -A /tmp)$(ls -d /usr/local 2>/dev/null)"
if [ -n "$left" ]; then
    echo "still there after the reset:" $left
    exit 1
fi
echo reset
"""


def link_reset_commands(plan: LabPlan) -> list[str]:
    """The `ip -batch` lines that put the bridge and taps back as `up` made them. Pure."""
    lines = []
    for guest in plan.guests:
        lines += [f"link set {guest.tap} mtu {TAP_MTU}", f"link set {guest.tap} master {plan.bridge}",
                  f"link set {guest.tap} up"]
    return [*lines, f"link set {plan.bridge} up"]


def qdisc_deletions(qdiscs: Sequence[dict[str, Any]]) -> list[str]:
    """The `tc -batch` lines that remove every queueing discipline added to a link, from
    `tc -j qdisc show`: a root one with a handle (the kernel's default has 0:), and ingress or
    clsact. Pure."""
    lines = []
    for qdisc in qdiscs:
        if qdisc.get("root") and qdisc.get("handle") != "0:":
            lines.append(f"qdisc del dev {qdisc['dev']} root")
        elif qdisc.get("kind") in ("ingress", "clsact"):
            lines.append(f"qdisc del dev {qdisc['dev']} {qdisc['kind']}")
    return lines


def reset_network(plan: LabPlan) -> None:
    """The lab's namespace back as `up` made it: no nftables, no added qdisc, taps as made."""
    nft = find_command("nft")
    if nft is not None:  # without nft nobody added a table
        run([require_command("ip"), "netns", "exec", plan.netns, nft, "flush", "ruleset"],
            what=f"removing the nftables rules in namespace {plan.netns}")
    tc = require_command("tc")
    shown = run([tc, "-n", plan.netns, "-j", "qdisc", "show"],
                what=f"reading the queueing disciplines in namespace {plan.netns}")
    deletions = qdisc_deletions(json.loads(shown.stdout or b"[]"))
    if deletions:
        run([tc, "-n", plan.netns, "-batch", "-"], input="".join(f"{line}\n" for line in deletions).encode(),
            what=f"removing queueing disciplines in namespace {plan.netns}")
    run([require_command("ip"), "-n", plan.netns, "-batch", "-"],
        input="".join(f"{line}\n" for line in link_reset_commands(plan)).encode(),
        what=f"resetting the taps in namespace {plan.netns}")


def _rewrite_inventory(workdir: Path, state: LabState) -> None:
    write_inventory(inventory_dir(workdir), state.name, [
        InventoryHost(record.name, record.ssh_port, record.ipv4.split("/")[0],
                      public_key_line(guest_files(workdir, record.name).host_key))
        for record in state.guests], client_key_path(workdir))


def _quiet(_message: str) -> None:
    pass


def _last_line(result: RemoteResult) -> str:
    lines = result.output.strip().splitlines()
    return lines[-1] if lines else f"exit status {result.exit_status}"


def reset(*, workdir: Path, progress: Progress | None = None) -> LabInfo:
    """Put the lab in `workdir` back as `up` left it (see the module's docstring); returns it.

    LabError when there is no lab, its forwarder is gone (bring it down and up), or a guest
    booted again still cannot be reset.
    """
    say = progress or _quiet
    workdir = Path(workdir).expanduser().resolve()
    state = load_state(workdir)
    if state is None:
        raise LabError(f"no lab is up in {workdir}")
    forwarder = forwarder_process(workdir, state)
    if forwarder is None or not is_alive(forwarder):
        raise LabError(f"the port forwarder of lab {state.name!r} is not running: "
                       "bring the lab down and up again (fleet lab down; fleet lab up)")
    plan = plan_lab(len(state.guests), state.name)
    reset_network(plan)
    _rewrite_inventory(workdir, state)
    login = {"client_key": client_key_path(workdir), "known_hosts": inventory_dir(workdir) / "known_hosts"}
    ports = {record.name: record.ssh_port for record in state.guests}
    processes = {record.name: qemu_process(guest_files(workdir, record.name), record.pid)
                 for record in state.guests}
    running = [name for name, process in processes.items() if process is not None and is_alive(process)]
    reboot = {name: "its QEMU is not running" for name in ports if name not in running}
    silent = wait_for_banners({name: ports[name] for name in running}, timeout=BANNER_TIMEOUT,
                              on_ready=lambda _name: None)
    reboot |= {name: f"its sshd gave no banner within {BANNER_TIMEOUT:g} s" for name in silent}
    answering = {name: ports[name] for name in running if name not in silent}
    for name, result in run_script(answering, GUEST_RESET, timeout=SCRIPT_TIMEOUT, **login).items():
        if result.exit_status != 0:
            reboot[name] = f"its reset over SSH failed: {_last_line(result)}"
    if reboot:
        for name, why in sorted(reboot.items()):
            say(f"{name}: {why}; booting it again")
        survivors = stop([process for name, process in processes.items()
                          if name in reboot and process is not None])
        if survivors:
            raise LabError(f"could not stop PIDs {', '.join(str(p.pid) for p in survivors)} of lab "
                           f"{state.name!r}")
        state = boot_guests([guest for guest in plan.guests if guest.name in reboot],
                            build_image(say), workdir, state, say)
        checked = run_script({name: ports[name] for name in reboot}, GUEST_RESET,
                             timeout=SCRIPT_TIMEOUT, **login)
        failed = {name: result for name, result in checked.items() if result.exit_status != 0}
        if failed:
            raise LabError("booted again, still not reset: " + "; ".join(
                f"{name}: {_last_line(result)}" for name, result in sorted(failed.items())))
    info = status(workdir=workdir)
    if info is None or not all(guest.running for guest in info.guests):
        raise LabError(f"lab {state.name!r} is not running as a whole after its reset")
    say(f"lab {state.name!r} reset ({len(reboot)} of {len(ports)} guest(s) booted again)")
    return info
