"""An inventory from EC2: a YAML source file (like Ansible's aws_ec2.yml) turned into the hosts,
groups and defaults dicts an inventory directory would hold, which fleet.inventory then validates
exactly as it validates files.

    plugin: fleet.aws_ec2            # the marker: `-i FILE.yaml` is an EC2 source
    regions: [eu-west-1]             # default: boto3's configured region
    profile: myprofile               # default: boto3's credential chain
    filters: {"tag:Role": isatap}    # DescribeInstances filters; instance-state-name: running unless set
    hostnames: private-ip            # or public-ip, public-dns: the SSH address
    name_from: tag:Name              # the host's name: that tag, else the instance id
    groups_from: [tag:Role, vpc, subnet]
    defaults: {username: ec2-user, data: {isatap_prefix: "fd00:5efe:1ab::/64"}}

Every host gets `data.ipv4` (the private IPv4) and `data.ec2` (instance_id, region, vpc_id,
subnet_id, security_groups, private_ip, public_ip, public_dns, tags). A defaults.yaml next to the
file is read too; the file's own `defaults` win. The source parsing and the building of the dicts
are pure; `describe_instances` is the one place that calls AWS, and maps its errors to
InventoryErrors naming the source file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.aws.client import EXTRA_HINT, ec2_client
from fleet.core.errors import InventoryError, UsageError
from fleet.inventory.files import DEFAULTS_FILE, InventoryFiles, read_yaml

KEYS = ("plugin", "regions", "profile", "filters", "hostnames", "name_from", "groups_from", "defaults")
HOSTNAMES = {"private-ip": "private_ip", "public-ip": "public_ip", "public-dns": "public_dns"}
DEFAULT_STATE_FILTER = {"instance-state-name": ["running"]}
_THROTTLING = {"RequestLimitExceeded", "Throttling", "ThrottlingException"}
_DENIED = {"UnauthorizedOperation", "AuthFailure", "AccessDenied", "AccessDeniedException",
           "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# The `plugin:` of a source file, and this source's entry point name in the group
# fleet.inventory_sources (pyproject.toml), through which fleet.inventory finds it.
EC2_PLUGIN = "fleet.aws_ec2"


@dataclass(frozen=True)
class EC2Source:
    """A source file, checked: what to ask EC2 and how to turn instances into hosts."""

    path: Path
    regions: tuple[str | None, ...]  # None: boto3's configured region
    profile: str | None
    filters: Mapping[str, tuple[str, ...]]
    hostnames: str
    name_from: str  # "tag:KEY" or "instance-id"
    groups_from: tuple[str, ...]  # "tag:KEY", "vpc", "subnet"
    defaults: Mapping[str, Any]


@dataclass(frozen=True)
class Instance:
    """The fields of one EC2 instance that the inventory uses (`data.ec2`)."""

    instance_id: str
    region: str
    vpc_id: str | None
    subnet_id: str | None
    security_groups: tuple[str, ...]
    private_ip: str | None
    public_ip: str | None
    public_dns: str | None
    tags: Mapping[str, str]

    def data(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "region": self.region, "vpc_id": self.vpc_id,
                "subnet_id": self.subnet_id, "security_groups": list(self.security_groups),
                "private_ip": self.private_ip, "public_ip": self.public_ip,
                "public_dns": self.public_dns, "tags": dict(self.tags)}


def ec2_inventory_files(path: Path, document: Mapping[str, Any]) -> InventoryFiles:
    """The inventory dicts for a source file (its YAML already read): asks EC2, builds them."""
    source = parse_source(path, document)
    instances = describe_instances(source)
    return inventory_files(source, instances)


def parse_source(path: Path, document: Mapping[str, Any]) -> EC2Source:
    """Check a source file's keys and values; InventoryError naming the file and the key."""
    file = str(path)

    def fail(key: str, message: str) -> InventoryError:
        return InventoryError(message, file=file, field=key)

    for key in document:
        if key not in KEYS:
            raise fail(str(key), f"unknown key (expected one of: {', '.join(KEYS)})")
    if document.get("plugin") != EC2_PLUGIN:
        raise fail("plugin", f"must be {EC2_PLUGIN!r}")

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

    filters_value = document.get("filters") or {}
    if not isinstance(filters_value, dict):
        raise fail("filters", "must be a mapping of EC2 filter names to a value or a list of values")
    filters: dict[str, tuple[str, ...]] = {}
    for name, value in filters_value.items():
        values = value if isinstance(value, list) else [value]
        if not _plain(name) or not values or not all(isinstance(v, (str, int)) and not isinstance(v, bool)
                                                      for v in values):
            raise fail(f"filters.{name}", "must be a value or a non-empty list of values")
        filters[str(name)] = tuple(str(v) for v in values)
    for name, values in DEFAULT_STATE_FILTER.items():
        filters.setdefault(name, tuple(values))

    hostnames = document.get("hostnames", "private-ip")
    if hostnames not in HOSTNAMES:
        raise fail("hostnames", f"unknown value {hostnames!r} (expected one of: {', '.join(HOSTNAMES)})")

    name_from = document.get("name_from", "tag:Name")
    if not _plain(name_from) or not (name_from == "instance-id" or _tag_key(name_from)):
        raise fail("name_from", f"must be 'tag:KEY' or 'instance-id', not {name_from!r}")

    groups_value = document.get("groups_from") or []
    groups_items = [groups_value] if isinstance(groups_value, str) else groups_value
    if not isinstance(groups_items, list) or not all(
            g in ("vpc", "subnet") or (_plain(g) and _tag_key(g)) for g in groups_items):
        raise fail("groups_from", f"must be a list of 'tag:KEY', 'vpc', 'subnet', not {groups_value!r}")

    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise fail("defaults", f"must be a mapping, not {type(defaults).__name__}")
    beside = read_yaml(path.parent / DEFAULTS_FILE, required=False)
    return EC2Source(path, regions, profile, filters, str(hostnames), str(name_from),
                     tuple(groups_items), _merged(beside, defaults))


def describe_instances(source: EC2Source) -> list[Instance]:
    """Every instance matching the filters in each region, over all pages. AWS's failures become
    InventoryErrors naming the source file; nothing else is touched."""
    file = str(source.path)
    try:
        from botocore import exceptions as boto_errors
        from botocore.parsers import ResponseParserError
    except ImportError:
        raise InventoryError(f"an EC2 source needs boto3, which is not installed: {EXTRA_HINT}",
                             file=file) from None
    filters = [{"Name": name, "Values": list(values)} for name, values in source.filters.items()]
    found: list[Instance] = []
    for region in source.regions:
        where = f"region {region}" if region else "the configured region"
        try:
            client = ec2_client(region, profile=source.profile)
            actual = str(client.meta.region_name)
            where = f"region {actual}"
            pages = client.get_paginator("describe_instances").paginate(Filters=filters)
            for page in pages:
                for reservation in page.get("Reservations", []):
                    found.extend(_instance(raw, actual) for raw in reservation.get("Instances", []))
        except UsageError as exc:
            raise InventoryError(str(exc), file=file) from exc
        except boto_errors.NoRegionError:
            raise InventoryError("no AWS region: set `regions:` in the file, or AWS_DEFAULT_REGION",
                                 file=file, field="regions") from None
        except boto_errors.ProfileNotFound as exc:
            raise InventoryError(f"AWS profile not found: {exc}", file=file, field="profile") from None
        except boto_errors.NoCredentialsError:
            raise InventoryError("no AWS credentials found (looked in the environment, the shared "
                                 "credentials and config files and the instance metadata); set a "
                                 "`profile:` or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                                 file=file) from None
        except boto_errors.ClientError as exc:
            raise _client_error(exc, file, where) from None
        except (boto_errors.EndpointConnectionError, boto_errors.ConnectTimeoutError,
                boto_errors.ReadTimeoutError) as exc:
            raise InventoryError(f"cannot reach the EC2 endpoint for {where}: {exc}", file=file) from None
        except boto_errors.BotoCoreError as exc:
            raise InventoryError(f"EC2 DescribeInstances in {where} failed: {_one_line(exc)}",
                                 file=file) from None
        except ResponseParserError as exc:  # not a BotoCoreError: an answer that is not EC2's XML
            raise InventoryError(f"EC2 DescribeInstances in {where}: the endpoint's answer is not "
                                 f"an EC2 response ({_one_line(exc)})", file=file) from None
    if not found:
        shown = ", ".join(f"{name}={','.join(values)}" for name, values in source.filters.items())
        regions = ", ".join(r or "the configured region" for r in source.regions)
        raise InventoryError(f"no running instance matches the filters ({shown}) in {regions}",
                             file=file, field="filters")
    return found


def _one_line(exc: object, limit: int = 200) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0].rstrip(":") if text else type(exc).__name__
    return first if len(first) <= limit else first[:limit] + "..."


def _client_error(exc: Any, file: str, where: str) -> InventoryError:
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), _one_line(error.get("Message", ""))
    if code in _DENIED:
        return InventoryError(f"access denied to EC2 DescribeInstances in {where} ({code}: {message}); "
                              "the credentials need ec2:DescribeInstances", file=file)
    if code in _THROTTLING:
        attempts = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) + 1
        return InventoryError(f"EC2 throttled DescribeInstances in {where} ({code}), still after "
                              f"{attempts} attempts with boto3's standard retries; try again later "
                              "or raise AWS_MAX_ATTEMPTS", file=file)
    return InventoryError(f"EC2 DescribeInstances in {where} failed ({code}: {message})", file=file)


def _instance(raw: Mapping[str, Any], region: str) -> Instance:
    return Instance(
        instance_id=str(raw["InstanceId"]),
        region=region,
        vpc_id=raw.get("VpcId"),
        subnet_id=raw.get("SubnetId"),
        security_groups=tuple(str(g["GroupId"]) for g in raw.get("SecurityGroups", [])),
        private_ip=raw.get("PrivateIpAddress") or None,
        public_ip=raw.get("PublicIpAddress") or None,
        public_dns=raw.get("PublicDnsName") or None,
        tags={str(t["Key"]): str(t.get("Value", "")) for t in raw.get("Tags", [])},
    )


def inventory_files(source: EC2Source, instances: Sequence[Instance]) -> InventoryFiles:
    """The hosts, groups and defaults dicts for these instances, as the files would hold them."""
    file = str(source.path)
    hosts: dict[str, Any] = {}
    groups: dict[str, Any] = {}
    for instance, name in zip(instances, _names(source.name_from, instances, file)):
        if instance.private_ip is None:
            raise InventoryError(f"instance {instance.instance_id} has no private IPv4 address, "
                                 "which the tunnel needs", file=file, host=name, field="data.ipv4")
        hostname = getattr(instance, HOSTNAMES[source.hostnames])
        if hostname is None:
            raise InventoryError(f"instance {instance.instance_id} has no {source.hostnames} "
                                 "(choose another `hostnames`)", file=file, host=name, field="hostnames")
        host_groups = _groups(source.groups_from, instance)
        for group in host_groups:
            groups.setdefault(group, {})
        hosts[name] = {"hostname": hostname, "groups": host_groups,
                       "data": {"ipv4": instance.private_ip, "ec2": instance.data()}}
    return InventoryFiles(source.path.parent, hosts, groups, _copy(source.defaults), label=file)


def _names(name_from: str, instances: Sequence[Instance], file: str) -> list[str]:
    """Each instance's host name: the tag (sanitised) or its id; a name taken twice gets the
    instance id appended, so every name is stable. A name still taken twice after that (a tag
    that reads like another's suffixed name, or like an instance id) is an InventoryError naming
    both instances: one host silently replacing another is never an answer."""
    key = _tag_key(name_from)
    wanted = [_sanitised(i.tags.get(key, "")) if key else "" for i in instances]
    wanted = [w or i.instance_id for w, i in zip(wanted, instances)]
    taken = {w: wanted.count(w) for w in wanted}
    names = [w if taken[w] == 1 or w == i.instance_id else f"{w}-{i.instance_id}"
             for w, i in zip(wanted, instances)]
    first: dict[str, Instance] = {}
    for name, instance in zip(names, instances):
        other = first.setdefault(name, instance)
        if other is not instance:
            raise InventoryError(
                f"instances {other.instance_id} ({_named(other, key)}) and {instance.instance_id} "
                f"({_named(instance, key)}) would both be host {name!r}; rename one, or set "
                "name_from: instance-id", file=file, field="name_from")
    return names


def _named(instance: Instance, key: str) -> str:
    value = instance.tags.get(key) if key else None
    return f"tag {key}={value!r}" if value is not None else f"no {key} tag" if key else "by id"


def _groups(groups_from: Iterable[str], instance: Instance) -> list[str]:
    found: list[str] = []
    for spec in groups_from:
        key = _tag_key(spec)
        if key:
            value = instance.tags.get(key)
            name = f"tag_{_sanitised(key)}_{_sanitised(value)}" if value else None
        elif spec == "vpc":
            name = f"vpc_{instance.vpc_id}" if instance.vpc_id else None
        else:
            name = f"subnet_{instance.subnet_id}" if instance.subnet_id else None
        if name and name not in found:
            found.append(name)
    return found


def _tag_key(spec: str) -> str:
    return spec[4:] if isinstance(spec, str) and spec.startswith("tag:") and len(spec) > 4 else ""


def _sanitised(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-")


def _plain(value: object) -> bool:
    return isinstance(value, str) and bool(value) and value.isprintable() and not value.isspace()


def _merged(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """`top` over `base`, mappings merged key by key (defaults.yaml's data under the file's)."""
    merged: dict[str, Any] = _copy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = _copy(value)
    return merged


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


__all__ = ["EC2Source", "Instance", "describe_instances", "ec2_inventory_files", "inventory_files",
           "parse_source"]
