"""The lab's network: its own namespace holding a bridge and one tap per guest.

Deleting the namespace removes the bridge and the taps with it. Nothing of the lab's network
is visible in the machine's own namespace; the forwarder is the only way in.
"""

from __future__ import annotations

from pathlib import Path

from fleet.lab.commands import require_command, run
from fleet.lab.errors import LabError
from fleet.lab.plan import LabPlan

NETNS_DIR = Path("/run/netns")


def netns_path(netns: str) -> Path:
    return NETNS_DIR / netns


def namespace_exists(netns: str) -> bool:
    return netns_path(netns).exists()


def network_commands(plan: LabPlan) -> list[str]:
    """The `ip -batch` lines that build the bridge and taps inside the namespace. Pure."""
    lines = [
        "link set lo up",
        f"link add {plan.bridge} type bridge",
        f"addr add {plan.bridge_address} dev {plan.bridge}",
        f"link set {plan.bridge} up",
    ]
    for guest in plan.guests:
        lines += [f"tuntap add dev {guest.tap} mode tap",
                  f"link set {guest.tap} master {plan.bridge}",
                  f"link set {guest.tap} up"]
    return lines


def namespace_taken_message(netns: str) -> str:
    return (f"network namespace {netns} already exists: another lab named "
            f"{netns.removeprefix('fleet-')!r} is up (bring it down, or pick another lab name)")


def create_namespace(netns: str) -> None:
    """Create the lab's namespace; LabError if it exists (it belongs to someone else then)."""
    if namespace_exists(netns):
        raise LabError(namespace_taken_message(netns))
    run([require_command("ip"), "netns", "add", netns], what=f"creating network namespace {netns}")


def create_bridge_and_taps(plan: LabPlan) -> None:
    """Inside the (new) namespace: loopback up, the bridge with its address, one tap per guest."""
    batch = "".join(f"{line}\n" for line in network_commands(plan)).encode()
    run([require_command("ip"), "-n", plan.netns, "-batch", "-"], input=batch,
        what=f"creating the bridge and taps in namespace {plan.netns}")


def delete_namespace(netns: str) -> None:
    """Delete the namespace (and with it the bridge and taps); nothing to do if it is gone."""
    if namespace_exists(netns):
        run([require_command("ip"), "netns", "delete", netns],
            what=f"deleting network namespace {netns}")
