"""Load and validate a Nornir inventory directory (hosts.yaml, groups.yaml, defaults.yaml).

Everything is checked here, before any host is touched: each problem is an InventoryError naming the
file, the host and the field. The inventory itself is loaded with Nornir's SimpleInventory, so the
host fields keep Nornir's meaning (`hostname` is the SSH address, `data` inherits from groups and
defaults, `connection_options` per connection plugin).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import ruamel.yaml
from nornir.core import Nornir
from nornir.core.configuration import Config
from nornir.core.inventory import Host
from nornir.plugins.inventory.simple import SimpleInventory

from fleet.errors import InventoryError, UsageError
from fleet.isatap import isatap_address, parse_ipv4, parse_prefix

HOSTS_FILE = "hosts.yaml"
GROUPS_FILE = "groups.yaml"
DEFAULTS_FILE = "defaults.yaml"
CONNECTION_PLUGIN = "asyncssh"

_ELEMENT_FIELDS = {"hostname", "port", "username", "password", "platform", "groups", "data",
                   "connection_options"}
_CONNECTION_FIELDS = {"hostname", "port", "username", "password", "platform", "extras"}


@dataclass(frozen=True)
class FleetHost:
    """One validated host: where to reach it over SSH and what its tunnel looks like."""

    name: str
    ssh_host: str
    ssh_port: int | None
    username: str | None
    password: str | None = field(repr=False)
    groups: tuple[str, ...]
    ipv4: IPv4Address
    prefix: IPv6Network
    ssh_options: Mapping[str, Any] = field(repr=False, compare=False)
    nornir_host: Host = field(repr=False, compare=False)
    address: IPv6Address = field(init=False)  # the host's ISATAP address (RFC 5214)
    address_text: str = field(init=False, repr=False, compare=False)  # its canonical text

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", isatap_address(self.prefix, self.ipv4))
        object.__setattr__(self, "address_text", str(self.address))


@dataclass(frozen=True)
class Inventory:
    """The validated hosts, in inventory order, and the Nornir object they came from."""

    directory: Path
    hosts: tuple[FleetHost, ...]
    nornir: Nornir = field(repr=False, compare=False)

    def select(self, names: Sequence[str] = (), groups: Sequence[str] = ()) -> Inventory:
        """Hosts whose name matches one of `names` (glob patterns) and that belong to one of
        `groups` (directly or through a parent group). Empty filters select everything."""
        selected = list(self.hosts)
        if names:
            for pattern in names:
                if not any(fnmatch.fnmatchcase(h.name, pattern) for h in self.hosts):
                    raise UsageError(f"--hosts: no host in {self.directory} matches {pattern!r}")
            selected = [h for h in selected if any(fnmatch.fnmatchcase(h.name, p) for p in names)]
        if groups:
            known = set(self.nornir.inventory.groups)
            for group in groups:
                if group not in known:
                    raise UsageError(f"--groups: {self.directory / GROUPS_FILE} has no group {group!r}")
            selected = [h for h in selected if any(h.nornir_host.has_parent_group(g) for g in groups)]
        return Inventory(self.directory, tuple(selected), self.nornir)

    def __len__(self) -> int:
        return len(self.hosts)


def load_inventory(directory: Path | str) -> Inventory:
    """Read, validate and load an inventory directory. Raises InventoryError on any problem."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InventoryError("inventory directory not found (use -i/--inventory DIR)",
                             file=str(directory))
    hosts_path = directory / HOSTS_FILE
    if not hosts_path.is_file():
        raise InventoryError("file not found; an inventory needs at least hosts.yaml",
                             file=str(hosts_path))
    raw_hosts = _read_yaml(hosts_path, required=True)
    raw_groups = _read_yaml(directory / GROUPS_FILE, required=False)
    raw_defaults = _read_yaml(directory / DEFAULTS_FILE, required=False)
    _check_structure(directory, raw_hosts, raw_groups, raw_defaults)

    # Nornir's own SimpleInventory, without InitNornir: that would import every installed
    # connection plugin (paramiko, netmiko ...) and, unless told not to, write ./nornir.log.
    loaded = SimpleInventory(host_file=str(hosts_path), group_file=str(directory / GROUPS_FILE),
                             defaults_file=str(directory / DEFAULTS_FILE)).load()
    nornir = Nornir(inventory=loaded, config=Config(logging={"enabled": False}))
    hosts = tuple(_fleet_host(directory, host, raw_hosts, raw_groups, raw_defaults)
                  for host in nornir.inventory.hosts.values())
    _check_unique_ipv4(directory / HOSTS_FILE, hosts)
    return Inventory(directory, hosts, nornir)


def _read_yaml(path: Path, *, required: bool) -> dict[str, Any]:
    if not path.exists() and not required:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"cannot read: {exc}", file=str(path)) from exc
    try:
        data = ruamel.yaml.YAML(typ="safe").load(text)
    except ruamel.yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise InventoryError(f"invalid YAML: {detail}", file=str(path)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InventoryError(f"must be a mapping of names to settings, not a {type(data).__name__}",
                             file=str(path))
    return data


def _check_structure(directory: Path, hosts: dict[str, Any], groups: dict[str, Any],
                     defaults: dict[str, Any]) -> None:
    hosts_file, groups_file = str(directory / HOSTS_FILE), str(directory / GROUPS_FILE)
    if not hosts:
        raise InventoryError("no hosts defined", file=hosts_file)
    _check_element(str(directory / DEFAULTS_FILE), None, defaults, allow_groups=False)
    for kind_file, elements in ((groups_file, groups), (hosts_file, hosts)):
        for name, element in elements.items():
            _check_name(kind_file, name)
            if element is None:
                elements[name] = element = {}
            if not isinstance(element, dict):
                raise InventoryError(f"settings must be a mapping, not {type(element).__name__}",
                                     file=kind_file, host=str(name))
            _check_element(kind_file, str(name), element, allow_groups=True)
            for group in element.get("groups") or ():
                if group not in groups:
                    raise InventoryError(f"unknown group {group!r} (not in {GROUPS_FILE})",
                                         file=kind_file, host=str(name), field="groups")
    _check_group_cycles(groups_file, groups)


def _check_name(file: str, name: object) -> None:
    if not isinstance(name, str) or not name or any(c.isspace() or not c.isprintable() for c in name):
        raise InventoryError(f"invalid name {name!r}: names are non-empty strings without spaces or "
                             "control characters", file=file)


def _check_element(file: str, name: str | None, element: dict[str, Any], *, allow_groups: bool) -> None:
    def fail(field_name: str, message: str) -> None:
        raise InventoryError(message, file=file, host=name, field=field_name)

    allowed = _ELEMENT_FIELDS if allow_groups else _ELEMENT_FIELDS - {"groups"}
    for key in element:
        if key not in allowed:
            fail(str(key), f"unknown field (expected one of: {', '.join(sorted(allowed))})")
    for key in ("hostname", "username", "password", "platform"):
        value = element.get(key)
        if value is not None and not isinstance(value, str):
            fail(key, f"must be a string, not {type(value).__name__}")
        if isinstance(value, str) and (not value or any(not c.isprintable() for c in value)):
            fail(key, "must be a non-empty string without control characters")
    port = element.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
        fail("port", f"must be a TCP port number 1-65535, not {port!r}")
    groups = element.get("groups")
    if groups is not None and (not isinstance(groups, list) or not all(isinstance(g, str) for g in groups)):
        fail("groups", "must be a list of group names")
    data = element.get("data")
    if data is not None and not isinstance(data, dict):
        fail("data", f"must be a mapping, not {type(data).__name__}")
    options = element.get("connection_options")
    if options is not None:
        if not isinstance(options, dict):
            fail("connection_options", "must be a mapping of connection plugin names to settings")
        for plugin, settings in options.items():
            where = f"connection_options.{plugin}"
            if settings is None:
                options[plugin] = settings = {}
            if not isinstance(settings, dict):
                fail(where, "must be a mapping")
            for key in settings:
                if key not in _CONNECTION_FIELDS:
                    fail(f"{where}.{key}", f"unknown field (expected one of: "
                                           f"{', '.join(sorted(_CONNECTION_FIELDS))})")
            if settings.get("extras") is not None and not isinstance(settings["extras"], dict):
                fail(f"{where}.extras", "must be a mapping of asyncssh.connect() options")


def _check_group_cycles(file: str, groups: dict[str, Any]) -> None:
    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in trail:
            raise InventoryError(f"groups form a cycle: {' -> '.join(trail + (name,))}",
                                 file=file, host=trail[0], field="groups")
        for parent in groups[name].get("groups") or ():
            visit(parent, trail + (name,))

    for group in groups:
        visit(group, ())


def _data_source(directory: Path, host: Host, key: str, raw_hosts: dict[str, Any],
                 raw_groups: dict[str, Any], raw_defaults: dict[str, Any]) -> str:
    """The file that supplies `data.key` for a host, following Nornir's inheritance order."""
    if key in ((raw_hosts.get(host.name) or {}).get("data") or {}):
        return str(directory / HOSTS_FILE)

    def in_groups(names: Iterable[str]) -> bool:
        for group in names:
            element = raw_groups.get(group) or {}
            if key in (element.get("data") or {}) or in_groups(element.get("groups") or ()):
                return True
        return False

    if in_groups((raw_hosts.get(host.name) or {}).get("groups") or ()):
        return str(directory / GROUPS_FILE)
    if key in (raw_defaults.get("data") or {}):
        return str(directory / DEFAULTS_FILE)
    return str(directory / HOSTS_FILE)


def _fleet_host(directory: Path, host: Host, raw_hosts: dict[str, Any], raw_groups: dict[str, Any],
                raw_defaults: dict[str, Any]) -> FleetHost:
    hosts_file = str(directory / HOSTS_FILE)
    params = host.get_connection_parameters(CONNECTION_PLUGIN)
    ssh_host = params.hostname or host.name

    raw_ipv4 = host.get("ipv4")
    if raw_ipv4 is None:
        try:
            ipv4 = parse_ipv4(ssh_host)
        except ValueError:
            raise InventoryError(f"missing: no data.ipv4 and hostname {ssh_host!r} is not an IPv4 "
                                 "address; set data.ipv4 to the tunnel's IPv4 (on AWS, the "
                                 "instance's private address)",
                                 file=hosts_file, host=host.name, field="data.ipv4") from None
    else:
        try:
            ipv4 = parse_ipv4(str(raw_ipv4))
        except ValueError as exc:
            raise InventoryError(str(exc), host=host.name, field="data.ipv4",
                                 file=_data_source(directory, host, "ipv4", raw_hosts, raw_groups,
                                                   raw_defaults)) from None

    raw_prefix = host.get("isatap_prefix")
    prefix_file = _data_source(directory, host, "isatap_prefix", raw_hosts, raw_groups, raw_defaults)
    if raw_prefix is None:
        raise InventoryError("missing: set data.isatap_prefix to a /64 (usually in defaults.yaml "
                             "or a group)", file=prefix_file, host=host.name, field="data.isatap_prefix")
    try:
        prefix = parse_prefix(str(raw_prefix))
    except ValueError as exc:
        raise InventoryError(str(exc), file=prefix_file, host=host.name,
                             field="data.isatap_prefix") from None

    return FleetHost(
        name=host.name,
        ssh_host=ssh_host,
        ssh_port=params.port,
        username=params.username,
        password=params.password,
        groups=tuple(g.name for g in host.groups),
        ipv4=ipv4,
        prefix=prefix,
        ssh_options=dict(params.extras or {}),
        nornir_host=host,
    )


def _check_unique_ipv4(hosts_file: Path, hosts: Sequence[FleetHost]) -> None:
    seen: dict[IPv4Address, str] = {}
    for host in hosts:
        if host.ipv4 in seen:
            raise InventoryError(f"{host.ipv4} is also the ipv4 of host {seen[host.ipv4]!r}; "
                                 "every host needs its own tunnel address",
                                 file=str(hosts_file), host=host.name, field="data.ipv4")
        seen[host.ipv4] = host.name
