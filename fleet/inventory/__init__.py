"""The inventory: Nornir's hosts, groups and defaults files, loaded and validated into FleetHosts.

`load_inventory(directory)` reads and checks every file before any host is touched; errors name
the file, the host and the field. `write_inventory` writes one that it reads back.
"""

from fleet.inventory.connection import check_username, parse_ssh_hostname
from fleet.inventory.files import DEFAULTS_FILE, GROUPS_FILE, HOSTS_FILE, InventoryFiles, Source
from fleet.inventory.load import load_inventory
from fleet.inventory.model import FleetHost, Inventory, LoadedHost
from fleet.inventory.ssh_files import check_ssh_files
from fleet.inventory.write import write_inventory

__all__ = ["DEFAULTS_FILE", "GROUPS_FILE", "HOSTS_FILE", "FleetHost", "Inventory", "InventoryFiles",
           "LoadedHost", "Source", "check_ssh_files", "check_username", "load_inventory",
           "parse_ssh_hostname", "write_inventory"]
