"""Load and validate a Nornir inventory directory (hosts.yaml, groups.yaml, defaults.yaml), or a
source file whose `plugin:` names a source that builds the same dicts in memory (fleet.aws's EC2
source: `plugin: fleet.aws_ec2`; the sources register by entry point, see sources.py).

Everything is checked here, before any host is touched: each problem is an InventoryError naming the
file, the host and the field. The inventory is made of Nornir's own objects, built as Nornir's
SimpleInventory builds them, so the host fields keep Nornir's meaning (`hostname` is the SSH address,
`data` inherits from groups and defaults, `connection_options` per connection plugin), and each
connection field is checked on the value the host really ends up with after that inheritance.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import socket
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from pathlib import Path
from typing import Any, TypeVar

import ruamel.yaml
from nornir.core import Nornir
from nornir.core.configuration import Config, LoggingConfig
from nornir.core.inventory import ConnectionOptions, Defaults, Group, Groups, Host, Hosts, ParentGroups
from nornir.core.inventory import Inventory as NornirInventory
from nornir.plugins.runners import ThreadedRunner
from ruamel.yaml.error import YAMLError

from fleet.core.errors import InventoryError, UsageError
from fleet.core.transport import DEFAULT_SSH_PORT
from fleet.inventory.sources import SourceError, source_loader, source_names
from fleet.isatap import isatap_address, parse_ipv4, parse_prefix
from fleet.jumps import config_problems, parse_jumps

HOSTS_FILE = "hosts.yaml"
GROUPS_FILE = "groups.yaml"
DEFAULTS_FILE = "defaults.yaml"
CONNECTION_PLUGIN = "asyncssh"

_ELEMENT_FIELDS = {"hostname", "port", "username", "password", "platform", "groups", "data",
                   "connection_options"}
_CONNECTION_FIELDS = {"hostname", "port", "username", "password", "platform", "extras"}
_CONNECTION_ATTRS = ("hostname", "port", "username", "password")
_SSH_FILE_OPTIONS = ("known_hosts", "client_keys")  # extras that name files
_ROUTE_OPTIONS = ("tunnel", "proxy_command")  # extras that change where an address leads

_DNS_NAME_MAX = 253
_DNS_LABEL_MAX = 63
_DNS_LABEL = re.compile(r"[A-Za-z0-9_-]+")
_USERNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*[$]?")
_USERNAME_MAX = 32


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
    isatap_routers: tuple[IPv4Address, ...] = ()  # the PRL: ISATAP routers' IPv4 addresses
    isatap_routes: tuple[IPv6Network, ...] | None = None  # through the first router; None: not set
    address: IPv6Address = field(init=False)  # the host's ISATAP address (RFC 5214)
    address_text: str = field(init=False, repr=False, compare=False)  # its canonical text

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", isatap_address(self.prefix, self.ipv4))
        object.__setattr__(self, "address_text", str(self.address))


class LoadedHost(Host):
    """A Nornir Host built by `load_inventory`: it carries its validated FleetHost and the
    Inventory it was loaded in, so code that is handed only the Nornir host (a Nornir task,
    fleet.nornir) finds what was validated without reading or checking the files again.
    Nornir's filters keep these objects, so a filtered Nornir object's hosts carry them too."""

    __slots__ = ("fleet_host", "fleet_inventory")


@dataclass(frozen=True)
class Source:
    """Where a host's value is written: the file, the field as written there, the value, and a note
    for the message (the group that set it, or why the host's name stands in for its hostname)."""

    file: str
    field: str
    value: Any = dataclasses.field(repr=False)  # `field` in here is the attribute above
    note: str = ""


@dataclass(frozen=True)
class InventoryFiles:
    """The three files as read and checked, kept to say which one set a host's value.

    `label` is set when the dicts were built in memory from one source file (an EC2 source):
    every message then names that file instead of hosts.yaml, groups.yaml or defaults.yaml."""

    directory: Path
    hosts: dict[str, Any]
    groups: dict[str, Any]
    defaults: dict[str, Any]
    label: str | None = None

    def path(self, name: str) -> str:
        return self.label if self.label is not None else str(self.directory / name)

    @property
    def where(self) -> str:
        """The inventory as messages name it: the directory, or the source file."""
        return self.label if self.label is not None else str(self.directory)

    def data_source(self, host: str, key: str) -> str:
        """The file that supplies `data.key` for a host, following Nornir's inheritance order."""
        if key in ((self.hosts.get(host) or {}).get("data") or {}):
            return self.path(HOSTS_FILE)

        def in_groups(names: Iterable[str]) -> bool:
            for group in names:
                element = self.groups.get(group) or {}
                if key in (element.get("data") or {}) or in_groups(element.get("groups") or ()):
                    return True
            return False

        if in_groups((self.hosts.get(host) or {}).get("groups") or ()):
            return self.path(GROUPS_FILE)
        if key in (self.defaults.get("data") or {}):
            return self.path(DEFAULTS_FILE)
        return self.path(HOSTS_FILE)

    def connection_source(self, host: str, attr: str) -> Source | None:
        """Where the host's asyncssh `attr` (hostname, port, username, password or extras) is set,
        or None when nowhere. The order is Nornir's (Host.get_connection_parameters), the first
        value that is not null winning:

        1. the host's `connection_options.asyncssh.ATTR`;
        2. for each of its groups in order: the group's `connection_options.asyncssh.ATTR`, then
           its parent groups' (by this same rule 2), then the defaults'
           `connection_options.asyncssh.ATTR` (Nornir looks at the defaults at the end of every
           group's branch, so they win over a later group);
        3. the defaults' `connection_options.asyncssh.ATTR`;
        4. except for extras, the plain `ATTR`: the host's, then its groups' (depth first, each
           group once, parents before the next group), then the defaults'.
        """
        written = f"connection_options.{CONNECTION_PLUGIN}.{attr}"

        def options(element: Mapping[str, Any]) -> Mapping[str, Any]:
            return (element.get("connection_options") or {}).get(CONNECTION_PLUGIN) or {}

        def from_defaults() -> Source | None:
            value = options(self.defaults).get(attr)
            return None if value is None else Source(self.path(DEFAULTS_FILE), written, value)

        def in_options(groups: Iterable[str]) -> Source | None:
            for group in groups:
                element = self.groups[group]
                value = options(element).get(attr)
                if value is not None:
                    return Source(self.path(GROUPS_FILE), written, value, f" (set in group {group!r})")
                found = in_options(element.get("groups") or ()) or from_defaults()
                if found is not None:
                    return found
            return None

        element = self.hosts[host]
        value = options(element).get(attr)
        if value is not None:
            return Source(self.path(HOSTS_FILE), written, value)
        found = in_options(element.get("groups") or ()) or from_defaults()
        if found is not None or attr == "extras":
            return found
        if element.get(attr) is not None:
            return Source(self.path(HOSTS_FILE), attr, element[attr])
        for group in self._extended_groups(host):
            if self.groups[group].get(attr) is not None:
                return Source(self.path(GROUPS_FILE), attr, self.groups[group][attr],
                              f" (set in group {group!r})")
        if self.defaults.get(attr) is not None:
            return Source(self.path(DEFAULTS_FILE), attr, self.defaults[attr])
        return None

    def hostname_source(self, host: str) -> Source:
        """Where the host's SSH hostname comes from; its name when no hostname is set (as Nornir)."""
        return self.connection_source(host, "hostname") or Source(
            self.path(HOSTS_FILE), "hostname", host, " (no hostname is set, so the host's name is used)")

    def _extended_groups(self, host: str) -> list[str]:
        """The host's groups and their parents, depth first, each once (Host.extended_groups)."""
        found: list[str] = []

        def visit(names: Iterable[str]) -> None:
            for name in names:
                if name not in found:
                    found.append(name)
                visit(self.groups[name].get("groups") or ())

        visit(self.hosts[host].get("groups") or ())
        return found


@dataclass(frozen=True)
class Inventory:
    """The validated hosts, in inventory order, the Nornir object they came from and the files."""

    directory: Path
    hosts: tuple[FleetHost, ...]
    nornir: Nornir = field(repr=False, compare=False)
    files: InventoryFiles = field(repr=False, compare=False)

    def select(self, names: Sequence[str] = (), groups: Sequence[str] = ()) -> Inventory:
        """Hosts whose name matches one of `names` (glob patterns) and that belong to one of
        `groups` (directly or through a parent group). Empty filters select everything."""
        selected = list(self.hosts)
        if names:
            for pattern in names:
                if not any(fnmatch.fnmatchcase(h.name, pattern) for h in self.hosts):
                    raise UsageError(f"-l/--limit: no host in {self.files.where} matches {pattern!r}")
            selected = [h for h in selected if any(fnmatch.fnmatchcase(h.name, p) for p in names)]
        if groups:
            known = set(self.nornir.inventory.groups)
            for group in groups:
                if group not in known:
                    raise UsageError(f"-g/--groups: {self.files.path(GROUPS_FILE)} has no group {group!r}")
            selected = [h for h in selected if any(h.nornir_host.has_parent_group(g) for g in groups)]
        return Inventory(self.directory, tuple(selected), self.nornir, self.files)

    def __len__(self) -> int:
        return len(self.hosts)


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
    _check_structure(files)

    # Nornir's own inventory objects, built from the files as read and checked above (read once:
    # what was checked is what is used). Not InitNornir: that would import every installed
    # connection plugin (paramiko, netmiko ...) and, unless told not to, write ./nornir.log.
    # Nornir's own threaded runner, so that `inventory.nornir.run(task=...)` works as usual.
    nornir = Nornir(inventory=_nornir_inventory(files),
                    config=Config(logging=LoggingConfig(enabled=False)), runner=ThreadedRunner())
    hosts = tuple(_fleet_host(files, host) for host in nornir.inventory.hosts.values())
    _check_unique_ipv4(files.path(HOSTS_FILE), hosts)
    _check_unique_ssh_target(files, hosts)
    inventory = Inventory(directory, hosts, nornir, files)
    for host in hosts:
        host.nornir_host.fleet_host = host  # type: ignore[attr-defined]  # a LoadedHost
        host.nornir_host.fleet_inventory = inventory  # type: ignore[attr-defined]
    return inventory


def read_yaml(path: Path, *, required: bool) -> dict[str, Any]:
    """A YAML file holding a mapping ({} when missing and not `required`, or empty)."""
    if not path.exists() and not required:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"cannot read: {exc}", file=str(path)) from exc
    try:
        data = ruamel.yaml.YAML(typ="safe").load(text)
    except YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise InventoryError(f"invalid YAML: {detail}", file=str(path)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InventoryError(f"must be a mapping of names to settings, not a {type(data).__name__}",
                             file=str(path))
    return data


_read_yaml = read_yaml  # its earlier name


def _check_structure(files: InventoryFiles) -> None:
    hosts, groups = files.hosts, files.groups
    hosts_file, groups_file = files.path(HOSTS_FILE), files.path(GROUPS_FILE)
    if not hosts:
        raise InventoryError("no hosts defined", file=hosts_file)
    _check_element(files.path(DEFAULTS_FILE), None, files.defaults, allow_groups=False)
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
    # hostname, port, username and password are checked per host, on the values each host ends up
    # with (_check_connection): an unused or overridden value cannot reach a host.
    platform = element.get("platform")
    if platform is not None and not _is_plain_string(platform):
        fail("platform", "must be a non-empty string without control characters")
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


def _nornir_inventory(files: InventoryFiles) -> NornirInventory:
    """The inventory SimpleInventory.load() would build, built from the files as already read and
    checked. SimpleInventory would read them again, fail on a host written as `name:` with no
    settings, and log a warning for an empty or comments-only groups.yaml or defaults.yaml."""
    def connection_options(element: Mapping[str, Any]) -> dict[str, ConnectionOptions]:
        return {str(plugin): ConnectionOptions(**{key: (settings or {}).get(key)
                                                  for key in _CONNECTION_FIELDS})
                for plugin, settings in (element.get("connection_options") or {}).items()}

    def attributes(element: Mapping[str, Any]) -> dict[str, Any]:
        return {"hostname": element.get("hostname"), "port": element.get("port"),
                "username": element.get("username"), "password": element.get("password"),
                "platform": element.get("platform"), "data": element.get("data"),
                "connection_options": connection_options(element)}

    defaults = Defaults(**attributes(files.defaults))
    groups = Groups({name: Group(name=name, defaults=defaults, **attributes(element))
                     for name, element in files.groups.items()})
    for name, group in groups.items():
        group.groups = ParentGroups(groups[parent] for parent in files.groups[name].get("groups") or ())
    hosts = Hosts({name: LoadedHost(name=name, defaults=defaults, **attributes(element),
                                    groups=ParentGroups(groups[g] for g in element.get("groups") or ()))
                   for name, element in files.hosts.items()})
    return NornirInventory(hosts=hosts, groups=groups, defaults=defaults)


def _fleet_host(files: InventoryFiles, host: Host) -> FleetHost:
    params = host.get_connection_parameters(CONNECTION_PLUGIN)
    ssh_host = params.hostname if params.hostname is not None else host.name
    _check_connection(files, host.name, ssh_host, params)
    hosts_file = files.path(HOSTS_FILE)

    raw_ipv4 = host.get("ipv4")
    if raw_ipv4 is None:
        try:
            IPv4Address(ssh_host)
        except ValueError:
            raise InventoryError(f"missing: no data.ipv4 and hostname {ssh_host!r} is not an IPv4 "
                                 "address; set data.ipv4 to the tunnel's IPv4 (on AWS, the "
                                 "instance's private address)",
                                 file=hosts_file, host=host.name, field="data.ipv4") from None
        try:
            ipv4 = parse_ipv4(ssh_host)
        except ValueError as exc:
            raise InventoryError(f"missing: no data.ipv4, and the hostname used in its place will not "
                                 f"do: {exc}; set data.ipv4 to the tunnel's IPv4",
                                 file=hosts_file, host=host.name, field="data.ipv4") from None
    else:
        try:
            ipv4 = parse_ipv4(str(raw_ipv4))
        except ValueError as exc:
            raise InventoryError(str(exc), host=host.name, field="data.ipv4",
                                 file=files.data_source(host.name, "ipv4")) from None

    raw_prefix = host.get("isatap_prefix")
    prefix_file = files.data_source(host.name, "isatap_prefix")
    if raw_prefix is None:
        raise InventoryError("missing: set data.isatap_prefix to a /64 (usually in defaults.yaml "
                             "or a group)", file=prefix_file, host=host.name, field="data.isatap_prefix")
    try:
        prefix = parse_prefix(str(raw_prefix))
    except ValueError as exc:
        raise InventoryError(str(exc), file=prefix_file, host=host.name,
                             field="data.isatap_prefix") from None

    routers = tuple(_data_list(files, host, "isatap_routers", parse_ipv4))
    routes = None
    if host.get("isatap_routes") is not None:
        routes = tuple(_data_list(files, host, "isatap_routes", lambda t: _parse_route(t, prefix)))
    if len(routers) > _MAX_ROUTERS:
        raise InventoryError(f"at most {_MAX_ROUTERS} routers (fleet records them in the link's "
                             "alias)", file=files.data_source(host.name, "isatap_routers"),
                             host=host.name, field="data.isatap_routers")

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
        isatap_routers=routers,
        isatap_routes=routes,
    )


_MAX_ROUTERS = 8
_T = TypeVar("_T")


def _data_list(files: InventoryFiles, host: Host, key: str,
               parse: Callable[[str], _T]) -> list[_T]:
    """A data field that is a list of values, each parsed; InventoryError naming the entry."""
    raw = host.get(key)
    where = {"file": files.data_source(host.name, key), "host": host.name}
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InventoryError(f"must be a list, not {type(raw).__name__}", field=f"data.{key}",
                             **where)
    values = []
    for index, item in enumerate(raw):
        try:
            values.append(parse(str(item)))
        except ValueError as exc:
            raise InventoryError(str(exc), field=f"data.{key}[{index}]", **where) from None
    if len(set(values)) != len(values):
        raise InventoryError("lists the same entry twice", field=f"data.{key}", **where)
    return values


def _parse_route(text: str, prefix: IPv6Network) -> IPv6Network:
    """A prefix to reach through an ISATAP router: IPv6, no host bits, outside the tunnel's /64."""
    try:
        network = IPv6Network(text.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an IPv6 prefix ({exc})") from None
    if network.subnet_of(prefix):
        raise ValueError(f"{network} is inside the ISATAP prefix {prefix}, which is on-link")
    return network


def _check_connection(files: InventoryFiles, name: str, ssh_host: str, params: ConnectionOptions) -> None:
    """Check the connection fields a host ends up with; the error names where each was written."""
    def fail(attr: str, message: str, option: str = "") -> InventoryError:
        source = files.hostname_source(name) if attr == "hostname" else files.connection_source(name, attr)
        if source is None:  # only if that walk ever disagreed with Nornir: still name the field
            source = Source(files.path(HOSTS_FILE), attr, None)
        return InventoryError(f"{message}{source.note}", file=source.file, host=name,
                              field=source.field + option)

    try:
        parse_ssh_hostname(ssh_host)
    except ValueError as exc:
        raise fail("hostname", str(exc)) from None
    checks = (("port", params.port, _check_port), ("username", params.username, check_username),
              ("password", params.password, _check_password))
    for attr, value, check in checks:
        if value is not None:
            try:
                check(value)
            except ValueError as exc:
                raise fail(attr, str(exc)) from None
    for option in _SSH_FILE_OPTIONS:
        try:
            _ssh_file_paths(params.extras or {}, option)
        except ValueError as exc:
            raise fail("extras", str(exc), f".{option}") from None
    extras = params.extras or {}
    for option, check in (("tunnel", _check_jump_spec), ("port", _check_port)):
        if extras.get(option) is not None:
            try:
                check(extras[option])
            except ValueError as exc:
                raise fail("extras", str(exc), f".{option}") from None


def parse_ssh_hostname(value: object) -> IPv4Address | IPv6Address | str:
    """Check an SSH hostname: an IPv4 or IPv6 literal (no scope id) or a DNS name. Returns what
    identifies the machine it names: the address, or the name in lower case without a final dot.

    Raises ValueError saying what is wrong. Nothing that a command line could read as an option
    or a second word (a space, a quote, a leading '-', a control character) gets through.
    """
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {type(value).__name__}")
    text = value

    def refuse(why: str) -> ValueError:
        return ValueError(f"{text!r} is neither an IP address nor a DNS name: {why}")

    if not text:
        raise ValueError("must not be empty")
    if not text.isprintable():
        raise refuse("it contains a control character")
    if any(c.isspace() for c in text):
        raise refuse("it contains whitespace")
    if any(c in "'\"`" for c in text):
        raise refuse("it contains a quote")
    if "%" in text:
        raise refuse("it contains '%' (an IPv6 scope id is not accepted; give a global address)")
    if ":" in text:
        try:
            address = IPv6Address(text)
        except ValueError:
            raise refuse("it contains ':' but is not an IPv6 address (the port goes in `port`)") from None
        return address.ipv4_mapped or address
    try:
        return IPv4Address(text)
    except ValueError:
        pass
    if text.startswith("-"):
        raise refuse("it starts with '-', which ssh would read as an option")
    name = text[:-1] if text.endswith(".") else text
    if len(name) > _DNS_NAME_MAX:
        raise refuse(f"it is longer than {_DNS_NAME_MAX} characters")
    labels = name.split(".")
    for label in labels:
        if not label:
            raise refuse("it has an empty label (two dots in a row, or a leading dot)")
        bad = next((c for c in label if not _DNS_LABEL.fullmatch(c)), None)
        if bad is not None:
            raise refuse(f"it contains {bad!r} (a DNS name has letters, digits, '-' and '_' between dots)")
        if label.startswith("-"):
            raise refuse(f"its label {label!r} starts with '-'")
        if len(label) > _DNS_LABEL_MAX:
            raise refuse(f"its label {label[:20]!r}... is longer than {_DNS_LABEL_MAX} characters")
    if labels[-1].isdigit():
        raise refuse("it looks like an IPv4 address but is not a valid one")
    try:
        socket.inet_aton(name)
    except OSError:
        pass
    else:  # what the resolver would read as an IPv4 address in another spelling, e.g. 0x7f000001
        raise refuse(f"the resolver reads it as the IPv4 address {socket.inet_ntoa(socket.inet_aton(name))}; "
                     "write that instead")
    return name.lower()


def check_username(value: object) -> str:
    """Check a login name: POSIX-like (letters, digits, '_', '.', '-', an optional final '$'), not
    starting with '-' or a digit, at most 32 characters. Returns it; ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {type(value).__name__}")
    if not _USERNAME.fullmatch(value) or len(value) > _USERNAME_MAX:
        raise ValueError(f"{value!r} is not a plain login name (letters, digits, '_', '.', '-' and a final "
                         f"'$', starting with a letter or '_', at most {_USERNAME_MAX} characters)")
    return value


def _check_port(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"must be a TCP port number 1-65535, not {value!r}")


def _check_jump_spec(value: object) -> None:
    """A `tunnel` extra: jump hosts as ProxyJump writes them, [user@]host[:port], comma-separated;
    each host a hostname as `hostname` takes it (or an ssh config alias), each port 1-65535."""
    if not isinstance(value, str):
        raise ValueError(f"must be jump hosts as ProxyJump writes them ([user@]host[:port], "
                         f"comma-separated), not {type(value).__name__}")
    for hop in parse_jumps(value):
        try:
            parse_ssh_hostname(hop.host)
            if hop.username is not None:
                check_username(hop.username)
        except ValueError as exc:
            raise ValueError(f"jump host {hop.host!r}: {exc}") from None


def _check_password(value: object) -> None:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {type(value).__name__}")
    if not _is_plain_string(value):
        raise ValueError("must be a non-empty string without control characters")


def _is_plain_string(value: object) -> bool:
    return isinstance(value, str) and bool(value) and value.isprintable()


def _ssh_file_paths(extras: Mapping[str, Any], option: str) -> list[str]:
    """The paths an asyncssh option that names files (known_hosts, client_keys) holds: it may be
    null, one path or a list of paths. ValueError for anything else."""
    value = extras.get(option)
    if value is None:
        return []
    paths = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if paths is None or not all(_is_plain_string(path) for path in paths):
        raise ValueError(f"must be a file path or a list of file paths (or null), not {value!r}")
    return paths


def check_ssh_files(inventory: Inventory, *, allow_missing_known_hosts: bool = False) -> None:
    """Check, before connecting, that every file the hosts' asyncssh extras name can be read:
    each `client_keys` path and each `known_hosts` path (which may be missing when
    `allow_missing_known_hosts`, for the accept-new host-key policy that creates it).

    Paths are taken as asyncssh takes them: `~` expanded, and a relative path relative to the
    current working directory (not to the inventory). Raises InventoryError naming the file that
    set the option, the host, the field and the path.
    """
    problems: dict[tuple[str, bool], str | None] = {}
    for host in inventory.hosts:
        source = inventory.files.connection_source(host.name, "extras")
        if source is None:
            continue
        for option in _SSH_FILE_OPTIONS:
            missing_ok = allow_missing_known_hosts and option == "known_hosts"
            for path in _ssh_file_paths(host.ssh_options, option):
                if (path, missing_ok) not in problems:
                    problems[path, missing_ok] = _unreadable_file(path, missing_ok=missing_ok)
                problem = problems[path, missing_ok]
                if problem is not None:
                    raise InventoryError(f"{problem}{source.note}", file=source.file, host=host.name,
                                         field=f"{source.field}.{option}")
    _check_ssh_configs(inventory)


def _check_ssh_configs(inventory: Inventory) -> None:
    """The Port and ProxyJump lines of the ssh config files the hosts' logins read (the `config`
    extra, else ~/.ssh/config) are valid: a port of 99999 is bad input, found before any host is
    touched, not a crash in the middle of a run."""
    seen: dict[Path, str | None] = {}
    default = "~/.ssh/config"
    for host in inventory.hosts:
        source = inventory.files.connection_source(host.name, "extras")
        named = host.ssh_options.get("config")
        paths = [named] if isinstance(named, str) else named if isinstance(named, list) else [default]
        for text in paths:
            if not isinstance(text, str):
                continue
            try:
                path = Path(text).expanduser()
            except RuntimeError:
                continue  # ~user with no such user: asyncssh says so at login
            if path not in seen:
                try:
                    found = config_problems(path)
                    seen[path] = str(found[0]) if found else None
                except OSError as exc:  # asyncssh skips a ~/.ssh/config it cannot read
                    seen[path] = None if named is None else f"{path}: {exc.strerror or exc}"
            problem = seen[path]
            if problem is None:
                continue
            if named is not None and source is not None:
                raise InventoryError(f"{problem}{source.note}", file=source.file, host=host.name,
                                     field=f"{source.field}.config")
            raise InventoryError(f"{problem.removeprefix(f'{path}: ')} (the ssh config this host's "
                                 "login reads)", file=str(path), host=host.name)


def _unreadable_file(text: str, *, missing_ok: bool) -> str | None:
    """Why the file at `text` cannot be read (None when it can), as asyncssh would open it."""
    try:
        path = Path(text).expanduser()
    except RuntimeError as exc:  # ~user with no such user
        return f"{text!r}: cannot expand '~' ({exc})"
    shown = str(path) if path.is_absolute() else f"{path} (relative to the current directory {Path.cwd()})"
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None if missing_ok else f"{shown}: no such file"
    except OSError as exc:
        return f"{shown}: {exc.strerror or exc}"
    if not stat.S_ISREG(mode):
        return f"{shown}: not a regular file"
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        return f"{shown}: cannot be read ({exc.strerror or exc})"
    return None


def _check_unique_ssh_target(files: InventoryFiles, hosts: Sequence[FleetHost]) -> None:
    """Two names for one SSH target would be two jobs on one machine, racing on its one sit1."""
    seen: dict[tuple[IPv4Address | IPv6Address | str, int, str], FleetHost] = {}
    for host in hosts:
        port = host.ssh_port or DEFAULT_SSH_PORT
        # One address behind two different jump hosts (asyncssh's `tunnel`) is two machines.
        route = repr([host.ssh_options.get(option) for option in _ROUTE_OPTIONS])
        other = seen.setdefault((parse_ssh_hostname(host.ssh_host), port, route), host)
        if other is host:
            continue
        source = files.hostname_source(host.name)
        port_source = files.connection_source(host.name, "port")
        target, other_target = _target(host.ssh_host, port), _target(other.ssh_host, port)
        spelled = "" if other_target == target else f" (as {other_target})"
        raise InventoryError(
            f"host {other.name!r} connects to {target} too{spelled}: one machine under two names "
            "would have two runs racing on its one sit1", file=source.file, host=host.name,
            field=source.field + (f"/{port_source.field}" if port_source else ""))


def _target(ssh_host: str, port: int) -> str:
    return f"[{ssh_host}]:{port}" if ":" in ssh_host else f"{ssh_host}:{port}"


def _check_unique_ipv4(hosts_file: str, hosts: Sequence[FleetHost]) -> None:
    seen: dict[IPv4Address, str] = {}
    for host in hosts:
        if host.ipv4 in seen:
            raise InventoryError(f"{host.ipv4} is also the ipv4 of host {seen[host.ipv4]!r}; "
                                 "every host needs its own tunnel address",
                                 file=hosts_file, host=host.name, field="data.ipv4")
        seen[host.ipv4] = host.name
