"""Load and validate a Nornir inventory directory (hosts.yaml, groups.yaml, defaults.yaml), or a
source file whose `plugin:` names a source that builds the same dicts in memory (fleet.aws's EC2
source: `plugin: fleet.aws_ec2`; the sources register by entry point, see sources.py).

Everything is checked here, before any host is touched: each problem is an InventoryError naming the
file, the host and the field. The inventory is made of Nornir's own objects, built as Nornir's
SimpleInventory builds them, so the host fields keep Nornir's meaning (`hostname` is the SSH address,
`data` inherits from groups and defaults, `connection_options` per connection plugin), and each
connection field is checked on the value the host really ends up with after that inheritance.

This module is the order of the steps; each step is its own module: files.py reads the files,
structure.py checks their shape, nornir_objects.py builds Nornir's objects, derive.py makes each
host's FleetHost (connection.py checks its connection fields), uniqueness.py refuses one machine
under two names. ssh_files.py checks the files a login reads, later, before connecting.
"""

from __future__ import annotations

from pathlib import Path

from nornir.core import Nornir
from nornir.core.configuration import Config, LoggingConfig
from nornir.plugins.runners import ThreadedRunner

from fleet.core.errors import InventoryError
from fleet.inventory.derive import fleet_host
from fleet.inventory.files import DEFAULTS_FILE, GROUPS_FILE, HOSTS_FILE, InventoryFiles, read_yaml
from fleet.inventory.model import Inventory
from fleet.inventory.nornir_objects import nornir_inventory
from fleet.inventory.sources import SourceError, source_loader, source_names
from fleet.inventory.structure import check_structure
from fleet.inventory.uniqueness import check_unique_ipv4, check_unique_ssh_target


def load_inventory(directory: Path | str) -> Inventory:
    """Read, validate and load an inventory directory, or a source file (`plugin: NAME`, see
    fleet.inventory.sources; fleet.aws.ec2_inventory's `plugin: fleet.aws_ec2`). Raises
    InventoryError on any problem.

    Files named in the SSH options (keys, known_hosts) are not looked at here: `fleet inventory`
    works without them. `check_ssh_files` checks them before connecting.
    """
    directory = Path(directory)
    if directory.is_file():
        return _load_source_file(directory)
    if not directory.is_dir():
        raise InventoryError("inventory directory not found (use -i/--inventory DIR, or FILE for "
                             f"an inventory source with {_plugins_wanted()})",
                             file=str(directory))
    hosts_path = directory / HOSTS_FILE
    if not hosts_path.is_file():
        raise InventoryError("file not found; an inventory needs at least hosts.yaml",
                             file=str(hosts_path))
    return load_inventory_files(InventoryFiles(directory, read_yaml(hosts_path, required=True),
                                               read_yaml(directory / GROUPS_FILE, required=False),
                                               read_yaml(directory / DEFAULTS_FILE, required=False)))


def _load_source_file(path: Path) -> Inventory:
    """A source file: its `plugin:` names the registered source that builds the dicts, which
    are then checked as the files of a directory are."""
    document = read_yaml(path, required=True)
    plugin = document.get("plugin")
    try:
        build = source_loader(plugin) if isinstance(plugin, str) else None
    except SourceError as exc:
        raise InventoryError(str(exc), file=str(path), field="plugin") from exc
    if build is None:
        raise InventoryError(f"not an inventory source: a file given to -i/--inventory needs "
                             f"{_plugins_wanted()} (found {plugin!r}); otherwise give the "
                             "inventory directory", file=str(path), field="plugin")
    files = build(path, document)
    if not isinstance(files, InventoryFiles):
        raise InventoryError(f"inventory source {plugin!r} gave {type(files).__name__}, "
                             "not InventoryFiles", file=str(path), field="plugin")
    return load_inventory_files(files)


def _plugins_wanted() -> str:
    """`plugin: fleet.aws_ec2` (or each registered source's, joined by "or")."""
    try:
        names = source_names()
    except SourceError as exc:
        return f"a `plugin:` ({exc})"
    return " or ".join(f"`plugin: {name}`" for name in names)


def load_inventory_files(files: InventoryFiles) -> Inventory:
    """Validate and load hosts, groups and defaults dicts, as read from the files or built in
    memory (`files.label` names their source in messages). The dicts may be normalised in place.
    Raises InventoryError on any problem."""
    directory = files.directory
    check_structure(files)

    # Nornir's own inventory objects, built from the files as read and checked above (read once:
    # what was checked is what is used). Not InitNornir: that would import every installed
    # connection plugin (paramiko, netmiko ...) and, unless told not to, write ./nornir.log.
    # Nornir's own threaded runner, so that `inventory.nornir.run(task=...)` works as usual.
    nornir = Nornir(inventory=nornir_inventory(files),
                    config=Config(logging=LoggingConfig(enabled=False)), runner=ThreadedRunner())
    hosts = tuple(fleet_host(files, host) for host in nornir.inventory.hosts.values())
    check_unique_ipv4(files.path(HOSTS_FILE), hosts)
    check_unique_ssh_target(files, hosts)
    inventory = Inventory(directory, hosts, nornir, files)
    for host in hosts:
        host.nornir_host.fleet_host = host  # type: ignore[attr-defined]  # a LoadedHost
        host.nornir_host.fleet_inventory = inventory  # type: ignore[attr-defined]
    return inventory
