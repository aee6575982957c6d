"""An EC2 source file, read and checked: fleet's own (`plugin: fleet.aws_ec2`) or one written for
Ansible's inventory plugin (`plugin: amazon.aws.aws_ec2` or `aws_ec2`), both turned into one
EC2Source. Pure: no AWS call here.

The two differ in one meaning. In fleet's file `hostnames` is where SSH connects (the Nornir
host's `hostname`) and `name_from` the host's name; in Ansible's, `hostnames` is the host's name
(its inventory_hostname, which Ansible also connects to) and `compose: {ansible_host: VAR}` where
it connects. So an Ansible file's host is reached at its `compose.ansible_host` when set, else at
the value that named it when that is an address (an IP or a DNS name), else at its private IPv4.
In both, `data.ipv4` is the private IPv4: the tunnel's address, never chosen.

An Ansible file is read only when everything it uses is supported: every other option, and every
unsupported value of a supported one, is named in one InventoryError (never ignored).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.core.errors import InventoryError
from fleet.inventory.files import DEFAULTS_FILE, read_yaml

# The `plugin:` of fleet's own source file, and this source's entry point name in the group
# fleet.inventory_sources (pyproject.toml), through which fleet.inventory finds it; and the
# names under which Ansible's plugin is written, registered to the same function.
EC2_PLUGIN = "fleet.aws_ec2"
ANSIBLE_PLUGINS = ("amazon.aws.aws_ec2", "aws_ec2")

FLEET_KEYS = ("plugin", "regions", "profile", "iam_role_arn", "filters", "include_filters",
              "exclude_filters", "hostnames", "name_from", "groups_from", "keyed_groups",
              "leading_separator", "defaults")
ANSIBLE_KEYS = ("plugin", "regions", "aws_profile", "profile", "boto_profile", "iam_role_arn",
                "filters", "include_filters", "exclude_filters", "hostnames", "keyed_groups",
                "leading_separator", "compose", "strict")

# What an instance is named or reached by: Ansible's spellings (EC2 filter names) first, then
# the other spellings accepted for them (fleet's earlier ones among them).
FIELDS = {"private-ip-address": "private_ip", "ip-address": "public_ip", "dns-name": "public_dns",
          "private-dns-name": "private_dns", "instance-id": "instance_id"}
ALIASES = {"private-ip": "private-ip-address", "public-ip": "ip-address",
           "public-ip-address": "ip-address", "public-dns": "dns-name", "public-dns-name": "dns-name",
           "private-dns": "private-dns-name"}
ADDRESSES = ("private-ip-address", "ip-address", "dns-name", "private-dns-name")
# compose.ansible_host's values: Ansible's host variables for the same fields.
ANSIBLE_HOST_VARS = {"private_ip_address": "private-ip-address", "public_ip_address": "ip-address",
                     "public_dns_name": "dns-name", "private_dns_name": "private-dns-name"}
# keyed_groups keys: Ansible's host variable paths for the instance's fields.
GROUP_KEYS = ("tags", "tags.KEY", "placement.availability_zone", "placement.region", "vpc_id",
              "subnet_id", "instance_type", "instance_id")
KEYED_GROUP_OPTIONS = ("key", "prefix", "separator")
DEFAULT_STATE_FILTER = {"instance-state-name": ("running",)}
DEFAULT_NAMES = ("tag:Name", "instance-id")
ANSIBLE_DEFAULT_NAMES = ("dns-name", "private-dns-name")  # Ansible's own default hostnames
_TAG_KEY = re.compile(r"""tags(?:\.([A-Za-z0-9_]+)|\[(['"])(.+)\2\])$""")

Filters = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class KeyedGroup:
    """A group per value of `key` (see GROUP_KEYS): prefix + separator + value; with no prefix,
    separator + value unless leading_separator is off, as Ansible's constructed groups."""

    key: str  # "tags", "tags.KEY" or another of GROUP_KEYS
    prefix: str = ""
    separator: str = "_"


@dataclass(frozen=True)
class EC2Source:
    """A source file, checked: what to ask EC2 and how to turn instances into hosts."""

    path: Path
    regions: tuple[str | None, ...]  # None: boto3's configured region
    profile: str | None
    iam_role_arn: str | None
    include: tuple[Filters, ...]  # one DescribeInstances per entry; an instance in any is in
    exclude: tuple[Filters, ...]  # ... unless it is in one of these
    names: tuple[str, ...]  # the host's name: the first of these with a value, else the id
    addresses: tuple[str, ...]  # where SSH connects: the first of these with a value
    address_from_name: bool  # Ansible's way: the value that named the host, when an address
    keyed_groups: tuple[KeyedGroup, ...]
    leading_separator: bool
    defaults: Mapping[str, Any]
    ansible: bool = False

    @property
    def filters(self) -> Filters:
        """The first query's filters (the only one unless include_filters is set)."""
        return self.include[0]


def parse_source(path: Path, document: Mapping[str, Any]) -> EC2Source:
    """Check a source file's keys and values; InventoryError naming the file and the key."""
    plugin = document.get("plugin")
    if plugin in ANSIBLE_PLUGINS:
        return _AnsibleFile(path, document).source()
    return _FleetFile(path, document).source()


class _FleetFile:
    """fleet's own file: a wrong key or value is an InventoryError at once, naming the key."""

    def __init__(self, path: Path, document: Mapping[str, Any]) -> None:
        self.path, self.document, self.file = path, document, str(path)

    def fail(self, key: str, message: str) -> InventoryError:
        return InventoryError(message, file=self.file, field=key)

    def source(self) -> EC2Source:
        document = self.document
        for key in document:
            if key not in FLEET_KEYS:
                raise self.fail(str(key), f"unknown key (expected one of: {', '.join(FLEET_KEYS)})")
        if document.get("plugin") != EC2_PLUGIN:
            raise self.fail("plugin", f"must be {EC2_PLUGIN!r} (or Ansible's "
                            f"{' or '.join(map(repr, ANSIBLE_PLUGINS))})")
        try:
            common = _common(self.path, document, self.fail)
        except _Unsupported as exc:
            raise self.fail(exc.option, exc.why) from None
        addresses = self.specs("hostnames", ("private-ip-address",), addresses_only=True)
        names = self.specs("name_from", DEFAULT_NAMES)
        groups = self.groups_from() + common.keyed_groups
        defaults = document.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise self.fail("defaults", f"must be a mapping, not {type(defaults).__name__}")
        beside = read_yaml(self.path.parent / DEFAULTS_FILE, required=False)
        return EC2Source(self.path, common.regions, common.profile, common.role, common.include,
                         common.exclude, names, addresses, False, groups, common.leading_separator,
                         _merged(beside, defaults))

    def specs(self, key: str, default: tuple[str, ...], *, addresses_only: bool = False) -> tuple[str, ...]:
        value = self.document.get(key)
        if value is None:
            return default
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise self.fail(key, f"must be one value or a list tried in order, not {value!r}")
        found = []
        for item in items:
            spec = _spec(item)
            allowed = ADDRESSES + ("tag:KEY",) if addresses_only else (*FIELDS, "tag:KEY")
            if spec is None or (addresses_only and spec == "instance-id"):
                why = " (an instance id is a name, not an address)" if spec == "instance-id" else ""
                raise self.fail(key, f"unknown value {item!r}{why} (expected: {', '.join(allowed)}; "
                                f"also {', '.join(ALIASES)})")
            found.append(spec)
        return tuple(dict.fromkeys(found))

    def groups_from(self) -> tuple[KeyedGroup, ...]:
        value = self.document.get("groups_from") or []
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(
                g in ("vpc", "subnet") or (_plain(g) and _tag_key(g)) for g in items):
            raise self.fail("groups_from", f"must be a list of 'tag:KEY', 'vpc', 'subnet', not {value!r}")
        made = {"vpc": KeyedGroup("vpc_id", "vpc"), "subnet": KeyedGroup("subnet_id", "subnet")}
        return tuple(made[g] if g in made else KeyedGroup(f"tags.{_tag_key(g)}", f"tag_{_tag_key(g)}")
                     for g in items)


class _Unsupported(Exception):
    def __init__(self, option: str, why: str) -> None:
        super().__init__(f"{option}: {why}")
        self.option, self.why = option, why


class _AnsibleFile:
    """A file written for Ansible's aws_ec2 plugin: every option and value fleet does not support
    is collected, and all of them named in one error."""

    def __init__(self, path: Path, document: Mapping[str, Any]) -> None:
        self.path, self.document, self.file = path, document, str(path)
        self.unsupported: list[str] = []

    def fail(self, key: str, message: str) -> InventoryError:
        return InventoryError(message, file=self.file, field=key)

    def source(self) -> EC2Source:
        document = self.document
        for key in document:
            if key not in ANSIBLE_KEYS:
                self.unsupported.append(str(key))
        if document.get("strict") not in (None, False):
            self.unsupported.append("strict: true (fleet leaves out a group whose key an instance lacks)")
        profiles = [k for k in ("aws_profile", "profile", "boto_profile") if document.get(k) is not None]
        if len(profiles) > 1:
            raise self.fail(profiles[1], f"give one of {', '.join(profiles)}: they are aliases")
        document = {**document, "profile": document[profiles[0]]} if profiles else document
        common = None
        try:
            common = _common(self.path, document, self.fail, self.unsupported)
        except _Unsupported as exc:
            self.unsupported.append(f"{exc.option} ({exc.why})")
        names = self.hostnames()
        addresses = self.ansible_host()
        if self.unsupported or common is None:
            raise InventoryError(
                f"an Ansible aws_ec2 file with what fleet does not support: "
                f"{'; '.join(self.unsupported)}. Supported: {', '.join(ANSIBLE_KEYS)}; hostnames "
                f"{', '.join((*FIELDS, 'tag:KEY'))}; keyed_groups keys {', '.join(GROUP_KEYS)} with "
                f"{', '.join(KEYED_GROUP_OPTIONS)}; compose only ansible_host",
                file=self.file, field=re.split(r"[ :(]", self.unsupported[0])[0] if self.unsupported else "")
        beside = read_yaml(self.path.parent / DEFAULTS_FILE, required=False)
        return EC2Source(self.path, common.regions, common.profile, common.role, common.include,
                         common.exclude, names, addresses or ("private-ip-address",), not addresses,
                         common.keyed_groups, common.leading_separator, _merged(beside, {}), ansible=True)

    def hostnames(self) -> tuple[str, ...]:
        value = self.document.get("hostnames")
        if value is None or value == []:
            return ANSIBLE_DEFAULT_NAMES
        if not isinstance(value, list):
            self.unsupported.append(f"hostnames: {value!r} (a list)")
            return ()
        found = []
        for item in value:
            spec = _spec(item)
            if spec is None:
                shown = "an entry with name/prefix/separator" if isinstance(item, dict) else repr(item)
                self.unsupported.append(f"hostnames: {shown}")
            else:
                found.append(spec)
        return tuple(dict.fromkeys(found))

    def ansible_host(self) -> tuple[str, ...]:
        compose = self.document.get("compose")
        if compose is None:
            return ()
        if not isinstance(compose, dict):
            self.unsupported.append("compose (a mapping)")
            return ()
        for key in compose:
            if key != "ansible_host":
                self.unsupported.append(f"compose.{key}")
        value = compose.get("ansible_host")
        if value is None:
            return ()
        spec = ANSIBLE_HOST_VARS.get(value) if isinstance(value, str) else None
        if spec is None:
            self.unsupported.append(f"compose.ansible_host: {value!r} (one of "
                                    f"{', '.join(ANSIBLE_HOST_VARS)})")
            return ()
        return (spec,)


@dataclass(frozen=True)
class _Common:
    regions: tuple[str | None, ...]
    profile: str | None
    role: str | None
    include: tuple[Filters, ...]
    exclude: tuple[Filters, ...]
    keyed_groups: tuple[KeyedGroup, ...]
    leading_separator: bool


def _common(path: Path, document: Mapping[str, Any], fail: Any,
            unsupported: list[str] | None = None) -> _Common:
    """The options both files share, with one meaning. A wrong value is `fail(key, message)`
    raised; an unsupported keyed group key is _Unsupported (or, with `unsupported`, listed)."""
    regions_value = document.get("regions")
    if regions_value is None:
        regions: tuple[str | None, ...] = (None,)
    else:
        items = [regions_value] if isinstance(regions_value, str) else regions_value
        if not isinstance(items, list) or not items or not all(_plain(r) for r in items):
            raise fail("regions", "must be a region name or a non-empty list of region names")
        regions = tuple(dict.fromkeys(items))

    profile = document.get("profile")
    if profile is not None and not _plain(profile):
        raise fail("profile", "must be a profile name")
    role = document.get("iam_role_arn")
    if role is not None and not (_plain(role) and str(role).startswith("arn:") and ":role/" in role):
        raise fail("iam_role_arn", f"must be a role's ARN (arn:aws:iam::ACCOUNT:role/NAME), not {role!r}")

    include: list[Filters] = []
    if document.get("filters"):
        include.append(_filters(document["filters"], "filters", fail))
    include += _filter_list(document.get("include_filters"), "include_filters", fail)
    include = [{**DEFAULT_STATE_FILTER, **f} if "instance-state-name" not in f else f
               for f in include or [{}]]
    exclude = _filter_list(document.get("exclude_filters"), "exclude_filters", fail)

    leading = document.get("leading_separator", True)
    if not isinstance(leading, bool):
        raise fail("leading_separator", f"must be true or false, not {leading!r}")
    return _Common(regions, profile, role, tuple(include), tuple(exclude),
                   _keyed_groups(document.get("keyed_groups"), fail, unsupported), leading)


def _filters(value: object, key: str, fail: Any) -> Filters:
    if not isinstance(value, dict):
        raise fail(key, "must be a mapping of EC2 filter names to a value or a list of values")
    filters: dict[str, tuple[str, ...]] = {}
    for name, item in value.items():
        values = item if isinstance(item, list) else [item]
        if not _plain(name) or not values or not all(isinstance(v, (str, int)) and not isinstance(v, bool)
                                                      for v in values):
            raise fail(f"{key}.{name}", "must be a value or a non-empty list of values")
        filters[str(name)] = tuple(str(v) for v in values)
    return filters


def _filter_list(value: object, key: str, fail: Any) -> list[Filters]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail(key, "must be a list of filter mappings (each one DescribeInstances query)")
    return [_filters(item, f"{key}[{index}]", fail) for index, item in enumerate(value)]


def _keyed_groups(value: object, fail: Any, unsupported: list[str] | None) -> tuple[KeyedGroup, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise fail("keyed_groups", "must be a list of {key, prefix, separator}")
    found = []
    for index, item in enumerate(value):
        where = f"keyed_groups[{index}]"
        if not isinstance(item, dict) or "key" not in item:
            raise fail(where, "must be a mapping with a `key`")
        problems = [f"{where}.{option}" for option in item if option not in KEYED_GROUP_OPTIONS]
        key = _group_key(item["key"])
        if key is None:
            problems.append(f"{where}.key: {item['key']!r} (supported: {', '.join(GROUP_KEYS)})")
        for option in ("prefix", "separator"):
            if option in item and not isinstance(item[option], str):
                raise fail(f"{where}.{option}", f"must be a string, not {item[option]!r}")
        if problems:
            if unsupported is None:
                raise _Unsupported(problems[0].split(":")[0], "not supported: " + "; ".join(problems))
            unsupported.extend(problems)
            continue
        assert key is not None
        found.append(KeyedGroup(key, item.get("prefix", ""), item.get("separator", "_")))
    return tuple(found)


def _group_key(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _TAG_KEY.match(text)
    if match:
        return f"tags.{match.group(1) or match.group(3)}"
    return text if text in GROUP_KEYS and text != "tags.KEY" else None


def _spec(item: object) -> str | None:
    """A hostnames/name_from entry in its canonical spelling; None when not supported."""
    if not isinstance(item, str):
        return None
    spec = ALIASES.get(item, item)
    if spec in FIELDS or (_tag_key(spec) and _plain(spec)):
        return spec
    return None


def _tag_key(spec: object) -> str:
    return spec[4:] if isinstance(spec, str) and spec.startswith("tag:") and len(spec) > 4 else ""


def _plain(value: object) -> bool:
    return isinstance(value, str) and bool(value) and value.isprintable() and not value.isspace()


def _merged(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """`top` over `base`, mappings merged key by key (defaults.yaml's data under the file's)."""
    merged: dict[str, Any] = copy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = copy(value)
    return merged


def copy(value: Any) -> Any:
    """A deep copy of plain YAML data (mappings, lists, scalars)."""
    if isinstance(value, dict):
        return {k: copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy(v) for v in value]
    return value


def tag_key(spec: str) -> str:
    """KEY of a "tag:KEY" spec; "" for any other."""
    return _tag_key(spec)


__all__ = ["ADDRESSES", "ANSIBLE_PLUGINS", "EC2_PLUGIN", "EC2Source", "FIELDS", "KeyedGroup", "copy",
           "parse_source", "tag_key"]
