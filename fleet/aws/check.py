"""The protocol 41 check's I/O edge: the instances named in the inventory (data.ec2.instance_id,
data.ec2.region), described again with boto3 so the check reads live state, judged by
fleet.aws.protocol41, and the missing security group rules added on request."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from fleet.aws.protocol41 import (
    Instance,
    NetworkAcl,
    Protocol41Check,
    SecurityGroup,
    SecurityGroupFix,
    check,
    network_acl_from_ec2,
    security_group_from_ec2,
)
from fleet.core.errors import FleetError, InventoryError
from fleet.inventory import HOSTS_FILE, Inventory

ClientFactory = Callable[[str | None], Any]  # region (None: boto3's) -> an EC2 client


class AwsError(FleetError):
    """An AWS call failed; the message names the call, the region and AWS's own words."""


@dataclass(frozen=True)
class InstanceRef:
    host: str
    instance_id: str
    region: str | None


def has_ec2(inventory: Inventory) -> bool:
    return any(isinstance(host.nornir_host.get("ec2"), dict) for host in inventory.hosts)


def instance_refs(inventory: Inventory) -> list[InstanceRef]:
    """Every host's data.ec2.instance_id and data.ec2.region; a host without the id is an error."""
    refs = []
    for host in inventory.hosts:
        ec2 = host.nornir_host.get("ec2")
        instance_id = ec2.get("instance_id") if isinstance(ec2, dict) else None
        if not isinstance(instance_id, str) or not instance_id:
            raise InventoryError(f"{inventory.directory / HOSTS_FILE}: host {host.name}: "
                                 "data.ec2.instance_id is missing; the protocol 41 check needs it")
        region = ec2.get("region") if isinstance(ec2, dict) else None
        refs.append(InstanceRef(host.name, instance_id,
                                region if isinstance(region, str) and region else None))
    return refs


def _call(client: Any, operation: str, **kwargs: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    region = client.meta.region_name
    try:
        return getattr(client, operation)(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise AwsError(f"AWS {exc.operation_name} in {region}: {error.get('Code')}: "
                       f"{error.get('Message')}") from None
    except BotoCoreError as exc:
        raise AwsError(f"AWS {operation} in {region}: {exc}") from None


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    while True:
        page = _call(client, operation, **kwargs)
        items += page.get(key, [])
        if not page.get("NextToken"):
            return items
        kwargs["NextToken"] = page["NextToken"]


def _default_clients() -> ClientFactory:
    from fleet.aws.client import ec2_client

    made: dict[str | None, Any] = {}

    def client(region: str | None) -> Any:
        if region not in made:
            try:
                made[region] = ec2_client(region)
            except FleetError:
                raise
            except Exception as exc:  # botocore's NoRegionError, a bad profile ...
                raise AwsError(f"AWS client for region {region or '(default)'}: {exc}") from None
        return made[region]

    return client


def describe(refs: Sequence[InstanceRef], clients: ClientFactory
             ) -> tuple[list[Instance], list[SecurityGroup], list[NetworkAcl]]:
    """The instances, their security groups and their VPCs' network ACLs, as EC2 has them now."""
    instances: list[Instance] = []
    groups: list[SecurityGroup] = []
    acls: list[NetworkAcl] = []
    by_region: dict[str | None, list[InstanceRef]] = {}
    for ref in refs:
        by_region.setdefault(ref.region, []).append(ref)
    for region, wanted in by_region.items():
        client = clients(region)
        name = client.meta.region_name
        reservations = _pages(client, "describe_instances", "Reservations",
                              InstanceIds=[r.instance_id for r in wanted])
        found = {i["InstanceId"]: i for r in reservations for i in r.get("Instances", [])}
        for ref in wanted:
            item = found.get(ref.instance_id)
            if item is None:
                raise AwsError(f"host {ref.host}: instance {ref.instance_id} not found in {name}")
            if "PrivateIpAddress" not in item or "SubnetId" not in item:
                raise AwsError(f"host {ref.host}: instance {ref.instance_id} has no private address "
                               f"or subnet (state {item.get('State', {}).get('Name')})")
            instances.append(Instance(ref.host, ref.instance_id, name, item.get("VpcId", ""),
                                      item["SubnetId"], IPv4Address(item["PrivateIpAddress"]),
                                      tuple(g["GroupId"] for g in item.get("SecurityGroups", []))))
        here = [i for i in instances if i.region == name]
        group_ids = sorted({g for i in here for g in i.groups})
        if group_ids:
            groups += [security_group_from_ec2(g) for g in _pages(
                client, "describe_security_groups", "SecurityGroups", GroupIds=group_ids)]
        vpcs = sorted({i.vpc_id for i in here if i.vpc_id})
        if vpcs:
            acls += [network_acl_from_ec2(a) for a in _pages(
                client, "describe_network_acls", "NetworkAcls",
                Filters=[{"Name": "vpc-id", "Values": vpcs}])]
    return instances, groups, acls


def run_check(inventory: Inventory, clients: ClientFactory | None = None) -> Protocol41Check:
    refs = instance_refs(inventory)
    return check(*describe(refs, clients or _default_clients()))


@dataclass(frozen=True)
class Applied:
    fix: SecurityGroupFix
    added: bool  # False: the rule was there already (InvalidPermission.Duplicate)

    def line(self) -> str:
        verb = "added" if self.added else "already present:"
        return f"{verb} inbound protocol 41 from {self.fix.source} on {self.fix.group_id} ({self.fix.region})"


def apply_security_group_fixes(fixes: Sequence[SecurityGroupFix],
                               clients: ClientFactory | None = None) -> list[Applied]:
    """AuthorizeSecurityGroupIngress for each fix; a rule that exists already is fine."""
    from botocore.exceptions import BotoCoreError, ClientError

    clients = clients or _default_clients()
    done = []
    for fix in fixes:
        client = clients(fix.region)
        try:
            client.authorize_security_group_ingress(GroupId=fix.group_id,
                                                    IpPermissions=fix.ip_permissions())
            done.append(Applied(fix, True))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidPermission.Duplicate":
                done.append(Applied(fix, False))
                continue
            _call(client, "authorize_security_group_ingress", GroupId=fix.group_id,
                  IpPermissions=fix.ip_permissions())  # raises it again, as an AwsError
        except BotoCoreError as exc:
            raise AwsError(f"AWS AuthorizeSecurityGroupIngress on {fix.group_id} in {fix.region}: "
                           f"{exc}") from None
    return done


def protocol41_warnings(inventory: Inventory, clients: ClientFactory | None = None) -> list[str]:
    """One-line warnings for a preflight: [] when no host has data.ec2 or all is allowed. Never
    raises for AWS or inventory trouble: that becomes a warning that the check could not run."""
    if not has_ec2(inventory):
        return []
    try:
        result = run_check(inventory, clients)
    except Exception as exc:  # boto3 missing, AWS errors, a host without data.ec2.instance_id
        return [f"protocol 41 check could not run: {exc}"]
    warnings = [f"protocol 41: {p}" for p in result.problems]
    warnings += [f"protocol 41: security group {f.group_id} lacks inbound 41 from {f.source} "
                 f"({len(f.pairs)} pair(s)); `fleet aws check --fix` adds it"
                 for f in result.security_group_fixes]
    warnings += [f"protocol 41: network ACL {f.acl_id} denies 41 "
                 f"{'outbound to' if f.egress else 'inbound from'} {f.cidr}; `fleet aws check` "
                 "prints the entry to add" for f in result.acl_fixes]
    return warnings
