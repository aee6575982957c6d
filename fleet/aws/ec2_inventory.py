"""An inventory from EC2: a YAML source file (fleet's own, or one written for Ansible's aws_ec2
plugin; fleet.aws.ec2_source reads both) turned into the hosts, groups and defaults dicts an
inventory directory would hold, which fleet.inventory then validates exactly as it validates files.

    plugin: fleet.aws_ec2            # the marker: `-i FILE.yaml` is an EC2 source
    regions: [eu-west-1]             # default: boto3's configured region
    profile: myprofile               # default: boto3's credential chain
    iam_role_arn: arn:aws:iam::123456789012:role/fleet-inventory   # sts:AssumeRole first
    filters: {"tag:Role": isatap}    # DescribeInstances filters; instance-state-name: running unless set
    include_filters: [{"tag:Role": router}]    # more queries: an instance in any one is in
    exclude_filters: [{"tag:Keep": "no"}]      # ... unless it is in one of these
    hostnames: [private-ip-address]  # the SSH address: the first that has a value
    name_from: [tag:Name, instance-id]         # the host's name: the first that has a value
    keyed_groups: [{key: placement.availability_zone, prefix: az}]
    groups_from: [tag:Role, vpc, subnet]
    defaults: {username: ec2-user, data: {isatap_prefix: "fd00:5efe:1ab::/64"}}

Every host gets `data.ipv4` (the private IPv4) and `data.ec2` (instance_id, region, vpc_id,
subnet_id, availability_zone, instance_type, security_groups, private_ip, private_dns, public_ip,
public_dns, tags). A defaults.yaml next to the file is read too; the file's own `defaults` win.
The building of the dicts is pure; `describe_instances` is the one place that calls AWS, and maps
its errors to InventoryErrors naming the source file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.aws.client import EXTRA_HINT, aws_session, ec2_client
from fleet.aws.ec2_source import (
    ADDRESSES,
    EC2_PLUGIN,
    FIELDS,
    EC2Source,
    Filters,
    KeyedGroup,
    copy,
    parse_source,
    tag_key,
)
from fleet.core.errors import InventoryError, UsageError
from fleet.inventory.files import InventoryFiles

_THROTTLING = {"RequestLimitExceeded", "Throttling", "ThrottlingException"}
_DENIED = {"UnauthorizedOperation", "AuthFailure", "AccessDenied", "AccessDeniedException",
           "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


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
    private_dns: str | None = None
    availability_zone: str | None = None
    instance_type: str | None = None

    def data(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "region": self.region, "vpc_id": self.vpc_id,
                "subnet_id": self.subnet_id, "availability_zone": self.availability_zone,
                "instance_type": self.instance_type, "security_groups": list(self.security_groups),
                "private_ip": self.private_ip, "private_dns": self.private_dns,
                "public_ip": self.public_ip, "public_dns": self.public_dns, "tags": dict(self.tags)}

    def value(self, spec: str) -> str | None:
        """The value of a hostnames/name_from spec (see fleet.aws.ec2_source.FIELDS, tag:KEY)."""
        key = tag_key(spec)
        value = self.tags.get(key) if key else getattr(self, FIELDS[spec])
        return value or None

    def group_values(self, key: str, separator: str) -> list[str]:
        """The values a keyed group's key gives: none, one, or one per tag for `tags`."""
        if key == "tags":
            return [f"{_sanitised(k)}{separator}{_sanitised(v)}" for k, v in self.tags.items() if v]
        if key.startswith("tags."):
            values = [self.tags.get(key[5:])]
        else:
            values = [{"placement.availability_zone": self.availability_zone,
                       "placement.region": self.region, "vpc_id": self.vpc_id,
                       "subnet_id": self.subnet_id, "instance_type": self.instance_type,
                       "instance_id": self.instance_id}[key]]
        return [_sanitised(v) for v in values if v and _sanitised(v)]


def ec2_inventory_files(path: Path, document: Mapping[str, Any]) -> InventoryFiles:
    """The inventory dicts for a source file (its YAML already read): asks EC2, builds them."""
    source = parse_source(path, document)
    instances = describe_instances(source)
    return inventory_files(source, instances)


def describe_instances(source: EC2Source) -> list[Instance]:
    """Every instance in each region that one of the include queries finds and no exclude query
    does, over all pages, each once, in the order found. With iam_role_arn, the role is assumed
    first (once). AWS's failures become InventoryErrors naming the source file; nothing else is
    touched."""
    file = str(source.path)
    try:
        from botocore import exceptions as boto_errors
        from botocore.parsers import ResponseParserError
    except ImportError:
        raise InventoryError(f"an EC2 source needs boto3, which is not installed: {EXTRA_HINT}",
                             file=file) from None
    found: dict[str, Instance] = {}
    session: Any = None
    for region in source.regions:
        where = f"region {region}" if region else "the configured region"
        operation = "DescribeInstances"
        try:
            if session is None:
                operation = "sts:AssumeRole" if source.iam_role_arn else operation
                session = aws_session(profile=source.profile, role_arn=source.iam_role_arn,
                                      region=next((r for r in source.regions if r), None))
                operation = "DescribeInstances"
            client = ec2_client(region, session=session)
            actual = str(client.meta.region_name)
            where = f"region {actual}"
            excluded = {i.instance_id for query in source.exclude for i in _query(client, query, actual)}
            for query in source.include:
                for instance in _query(client, query, actual):
                    if instance.instance_id not in excluded:
                        found.setdefault(instance.instance_id, instance)
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
            if operation == "sts:AssumeRole":
                raise _role_error(exc, file, source.iam_role_arn or "") from None
            raise _client_error(exc, file, where) from None
        except (boto_errors.EndpointConnectionError, boto_errors.ConnectTimeoutError,
                boto_errors.ReadTimeoutError) as exc:
            endpoint = "STS" if operation == "sts:AssumeRole" else "EC2"
            raise InventoryError(f"cannot reach the {endpoint} endpoint for {where}: {exc}",
                                 file=file) from None
        except boto_errors.BotoCoreError as exc:
            raise InventoryError(f"{_call(operation)} in {where} failed: {_one_line(exc)}",
                                 file=file) from None
        except ResponseParserError as exc:  # not a BotoCoreError: an answer that is not EC2's XML
            raise InventoryError(f"{_call(operation)} in {where}: the endpoint's answer is not "
                                 f"an EC2 response ({_one_line(exc)})", file=file) from None
    if not found:
        regions = ", ".join(r or "the configured region" for r in source.regions)
        raise InventoryError(f"no running instance matches the filters ({_shown(source.include)}) "
                             f"in {regions}" + (f", after exclude_filters ({_shown(source.exclude)})"
                                                if source.exclude else ""),
                             file=file, field="filters")
    return list(found.values())


def _query(client: Any, filters: Filters, region: str) -> list[Instance]:
    wanted = [{"Name": name, "Values": list(values)} for name, values in filters.items()]
    pages = client.get_paginator("describe_instances").paginate(Filters=wanted)
    return [_instance(raw, region) for page in pages for reservation in page.get("Reservations", [])
            for raw in reservation.get("Instances", [])]


def _shown(queries: Sequence[Filters]) -> str:
    return " or ".join(", ".join(f"{name}={','.join(values)}" for name, values in query.items())
                       for query in queries)


def _call(operation: str) -> str:
    return "STS AssumeRole" if operation == "sts:AssumeRole" else f"EC2 {operation}"


def _one_line(exc: object, limit: int = 200) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0].rstrip(":") if text else type(exc).__name__
    return first if len(first) <= limit else first[:limit] + "..."


def _role_error(exc: Any, file: str, role: str) -> InventoryError:
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), _one_line(error.get("Message", ""))
    hint = ("; the credentials need sts:AssumeRole on it, and its trust policy must let them in"
            if code in _DENIED else "")
    return InventoryError(f"cannot assume role {role} ({code}: {message}){hint}", file=file,
                          field="iam_role_arn")


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
        private_dns=raw.get("PrivateDnsName") or None,
        availability_zone=raw.get("Placement", {}).get("AvailabilityZone") or None,
        instance_type=raw.get("InstanceType") or None,
    )


def inventory_files(source: EC2Source, instances: Sequence[Instance]) -> InventoryFiles:
    """The hosts, groups and defaults dicts for these instances, as the files would hold them."""
    file = str(source.path)
    hosts: dict[str, Any] = {}
    groups: dict[str, Any] = {}
    for instance, (name, named_by) in zip(instances, _names(source.names, instances, file)):
        if instance.private_ip is None:
            raise InventoryError(f"instance {instance.instance_id} has no private IPv4 address, "
                                 "which the tunnel needs", file=file, host=name, field="data.ipv4")
        hostname = _address(source, instance, named_by)
        if hostname is None:
            tried = ", ".join(source.addresses)
            raise InventoryError(f"instance {instance.instance_id} has none of {tried} "
                                 "(add another to `hostnames`)", file=file, host=name,
                                 field="compose.ansible_host" if source.ansible else "hostnames")
        host_groups = _groups(source.keyed_groups, source.leading_separator, instance)
        for group in host_groups:
            groups.setdefault(group, {})
        hosts[name] = {"hostname": hostname, "groups": host_groups,
                       "data": {"ipv4": instance.private_ip, "ec2": instance.data()}}
    return InventoryFiles(source.path.parent, hosts, groups, copy(source.defaults), label=file,
                          origin=source)


def _address(source: EC2Source, instance: Instance, named_by: str) -> str | None:
    """Where SSH connects: in an Ansible file without compose.ansible_host, the value that named
    the host when it is an address; else the first of `addresses` that the instance has."""
    if source.address_from_name and named_by in ADDRESSES:
        return instance.value(named_by)
    return next((v for v in (instance.value(spec) for spec in source.addresses) if v), None)


def _names(specs: Sequence[str], instances: Sequence[Instance], file: str) -> list[tuple[str, str]]:
    """Each instance's host name, and the spec that gave it: the first spec with a value
    (sanitised), else its id. A name taken twice gets the instance id appended, so every name is
    stable. A name still taken twice after that (a tag that reads like another's suffixed name,
    or like an instance id) is an InventoryError naming both instances: one host silently
    replacing another is never an answer."""
    chosen = [_chosen(specs, i) for i in instances]
    wanted = [w for w, _ in chosen]
    taken = {w: wanted.count(w) for w in wanted}
    names = [w if taken[w] == 1 or w == i.instance_id else f"{w}-{i.instance_id}"
             for w, i in zip(wanted, instances)]
    first: dict[str, tuple[Instance, str]] = {}
    for name, instance, (_, spec) in zip(names, instances, chosen):
        other, other_spec = first.setdefault(name, (instance, spec))
        if other is not instance:
            raise InventoryError(
                f"instances {other.instance_id} ({_named(other, other_spec)}) and {instance.instance_id} "
                f"({_named(instance, spec)}) would both be host {name!r}; rename one, or set "
                "name_from: instance-id", file=file, field="name_from")
    return [(name, spec) for name, (_, spec) in zip(names, chosen)]


def _chosen(specs: Sequence[str], instance: Instance) -> tuple[str, str]:
    for spec in specs:
        value = _sanitised(instance.value(spec) or "")
        if value:
            return value, spec
    return instance.instance_id, "instance-id"


def _named(instance: Instance, spec: str) -> str:
    key = tag_key(spec)
    if key:
        return f"tag {key}={instance.tags.get(key)!r}"
    return "by id" if spec == "instance-id" else f"by {spec} {instance.value(spec)}"


def _groups(keyed: Iterable[KeyedGroup], leading_separator: bool, instance: Instance) -> list[str]:
    """The instance's groups, as Ansible's keyed_groups name them: prefix + separator + value,
    separator + value without a prefix (value alone if leading_separator is off); a key the
    instance has no value for gives no group."""
    found: list[str] = []
    for group in keyed:
        for value in instance.group_values(group.key, group.separator):
            if group.prefix:
                name = f"{_sanitised(group.prefix)}{group.separator}{value}"
            else:
                name = f"{group.separator}{value}" if leading_separator else value
            if name not in found:
                found.append(name)
    return found


def _sanitised(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-")


__all__ = ["EC2_PLUGIN", "EC2Source", "Instance", "describe_instances", "ec2_inventory_files",
           "inventory_files", "parse_source"]
