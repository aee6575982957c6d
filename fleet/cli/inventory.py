"""`fleet inventory`: the selected hosts, their SSH address and ISATAP address, as a table or JSON."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fleet.cli.options import Commands, add_inventory_options, selected_hosts
from fleet.core.output import columns, write_json
from fleet.core.results import EXIT_OK


def add_parser(commands: Commands) -> argparse.ArgumentParser:
    inventory = commands.add_parser("inventory", help="list the hosts and their ISATAP addresses")
    add_inventory_options(inventory)
    inventory.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return inventory


def _port(host: Any) -> int:
    """The port SSH connects to: the inventory's; else the ssh config's, read through the SSH
    library, which is loaded only then (a listing whose hosts all name a port loads no SSH)."""
    if host.ssh_port is not None:
        return int(host.ssh_port)
    from fleet.ssh.transport import effective_port

    return effective_port(host)


def run(options: argparse.Namespace) -> int:
    inventory = selected_hosts(options)
    rows: list[dict[str, Any]] = [
        {"name": h.name, "ssh": f"{h.ssh_host}:{_port(h)}", "ipv4": str(h.ipv4),
         "address": str(h.address), "groups": list(h.groups)} for h in inventory.hosts]
    if options.json:
        write_json({"hosts": rows}, sys.stdout)
        return EXIT_OK
    table = [["NAME", "SSH", "IPV4", "ISATAP ADDRESS", "GROUPS"]] + [
        [r["name"], r["ssh"], r["ipv4"], r["address"], ",".join(r["groups"])] for r in rows]
    print("\n".join(columns(table)))
    return EXIT_OK
