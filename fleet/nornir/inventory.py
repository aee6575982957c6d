"""FleetInventory and FleetEC2Inventory: Nornir's inventory plugins for fleet's inventory
directories and for EC2 source files (`plugin: fleet.aws_ec2`, see fleet.aws.ec2_inventory).

    InitNornir(inventory={"plugin": "FleetInventory", "options": {"inventory_dir": "inventory"}},
               logging={"enabled": False})
    InitNornir(inventory={"plugin": "FleetEC2Inventory", "options": {"source": "aws_ec2.yaml"}},
               logging={"enabled": False})

Registered under the entry point group `nornir.plugins.inventory` (pyproject.toml), which
InitNornir reads. `load()` reads and validates the directory with fleet.inventory.load_inventory,
so a bad inventory raises the same InventoryError as `fleet inventory` (naming the file, the host
and the field), before any host is touched. The hosts it returns are fleet's LoadedHosts: Nornir
hosts that carry their validated FleetHost (see fleet.nornir.hosts).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from nornir.core.inventory import Inventory


class FleetInventory:
    """Nornir inventory plugin: a fleet inventory directory (hosts.yaml, groups.yaml,
    defaults.yaml in Nornir's SimpleInventory format, validated by fleet)."""

    def __init__(self, inventory_dir: str | PathLike[str] = "inventory") -> None:
        self.inventory_dir = inventory_dir

    def load(self) -> Inventory:
        from fleet.inventory import load_inventory  # only when used: InitNornir loads every plugin

        return load_inventory(Path(self.inventory_dir)).nornir.inventory


class FleetEC2Inventory:
    """Nornir inventory plugin: the EC2 instances an EC2 source file selects, validated by fleet
    as an inventory directory would be (needs the aws extra)."""

    def __init__(self, source: str | PathLike[str] = "aws_ec2.yaml") -> None:
        self.source = source

    def load(self) -> Inventory:
        from fleet.core.errors import InventoryError
        from fleet.inventory import load_inventory

        path = Path(self.source)
        if not path.is_file():
            raise InventoryError("EC2 source file not found", file=str(path))
        return load_inventory(path).nornir.inventory


__all__ = ["FleetEC2Inventory", "FleetInventory"]
