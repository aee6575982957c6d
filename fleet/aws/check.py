"""The protocol 41 check's I/O edge: the instances named in the inventory (data.ec2.instance_id,
data.ec2.region, and the tunnel's data.ipv4), described again with boto3 so the check reads live
state, judged by fleet.aws.protocol41, and the missing security group rules added on request.

Every botocore failure (ClientError, BotoCoreError, and ResponseParserError, which is neither: an
endpoint that answers something that is not EC2's XML) becomes an AwsError here, in one line
naming the call and the region."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from fleet.aws.ec2_source import EC2Source
from fleet.aws.protocol41 import (
    NOT_FOUND,
    GroupMember,
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
    ipv4: IPv4Address  # the inventory's data.ipv4: the address the rules must let through


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
                                region if isinstance(region, str) and region else None, host.ipv4))
    return refs


def aws_error(exc: Exception, operation: str, where: str) -> AwsError | None:
    """botocore's failure of `operation` as an AwsError (one line); None for anything else."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    operation = "".join(word.title() for word in operation.split("_")) if "_" in operation else operation
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return AwsError(f"AWS {exc.operation_name} {where}: {error.get('Code')}: "
                        f"{_one_line(str(error.get('Message')))}")
    if isinstance(exc, ResponseParserError):
        return AwsError(f"AWS {operation} {where}: the endpoint's answer is not an EC2 response "
                        f"({_one_line(str(exc))})")
    if isinstance(exc, BotoCoreError):
        return AwsError(f"AWS {operation} {where}: {_one_line(str(exc))}")
    return None


def _one_line(text: str, limit: int = 200) -> str:
    first = text.strip().splitlines()[0].rstrip(":") if text.strip() else ""
    return first if len(first) <= limit else first[:limit] + "..."


def _call(client: Any, operation: str, **kwargs: Any) -> Any:
    try:
        return getattr(client, operation)(**kwargs)
    except Exception as exc:
        mapped = aws_error(exc, operation, f"in {client.meta.region_name}")
        if mapped is None:
            raise
        raise mapped from None


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    while True:
        page = _call(client, operation, **kwargs)
        items += page.get(key, [])
        if not page.get("NextToken"):
            return items
        kwargs["NextToken"] = page["NextToken"]


@dataclass(frozen=True)
class AwsLogin:
    """Whose credentials the check uses: a profile (None: boto3's default chain) and a role to
    assume with them (None: none); `region` picks STS's regional endpoint."""

    profile: str | None = None
    role_arn: str | None = None
    region: str | None = None

    @classmethod
    def of(cls, inventory: Inventory) -> AwsLogin:
        """The login the inventory was read with: an EC2 source's profile and iam_role_arn (its
        first region for STS), so that the check sees the instances the inventory listed; the
        default chain for an inventory of files."""
        source = inventory.files.origin
        if not isinstance(source, EC2Source):
            return cls()
        return cls(source.profile, source.iam_role_arn, next((r for r in source.regions if r), None))

    def where(self) -> str:
        said = [f"profile {self.profile}"] if self.profile else []
        said += [f"role {self.role_arn}"] if self.role_arn else []
        return f" (the inventory's {' and '.join(said)})" if said else ""


def inventory_clients(inventory: Inventory) -> ClientFactory:
    """EC2 clients with the credentials the inventory was read with (see AwsLogin.of)."""
    return _default_clients(AwsLogin.of(inventory))


def _default_clients(login: AwsLogin | None = None) -> ClientFactory:
    """EC2 clients, one per region, all from one boto3 session made on first use (the role, if
    any, assumed once)."""
    from fleet.aws.client import aws_session, ec2_client

    login = login or AwsLogin()
    made: dict[str | None, Any] = {}
    sessions: list[Any] = []

    def client(region: str | None) -> Any:
        if region not in made:
            if not sessions:
                try:
                    sessions.append(aws_session(profile=login.profile, role_arn=login.role_arn,
                                                region=login.region or region))
                except FleetError:
                    raise
                except Exception as exc:  # a missing profile, a role it may not assume ...
                    what = "sts:AssumeRole" if login.role_arn else "AWS session"
                    raise AwsError(f"{what}{login.where()}: {_one_line(str(exc))}") from None
            try:
                made[region] = ec2_client(region, session=sessions[0])
            except FleetError:
                raise
            except Exception as exc:  # botocore's NoRegionError ...
                raise AwsError(f"AWS client for region {region or '(default)'}{login.where()}: "
                               f"{exc}") from None
        return made[region]

    return client


def _instance(ref: InstanceRef, region: str, item: dict[str, Any] | None) -> Instance:
    if item is None:
        return Instance(ref.host, ref.instance_id, region, "", "", ref.ipv4, (), (), NOT_FOUND)
    addresses = [item["PrivateIpAddress"]] if item.get("PrivateIpAddress") else []
    for interface in item.get("NetworkInterfaces", []):
        addresses += [a["PrivateIpAddress"] for a in interface.get("PrivateIpAddresses", [])
                      if a.get("PrivateIpAddress")]
    return Instance(ref.host, ref.instance_id, region, item.get("VpcId", ""), item.get("SubnetId", ""),
                    ref.ipv4, tuple(g["GroupId"] for g in item.get("SecurityGroups", [])),
                    tuple(IPv4Address(a) for a in dict.fromkeys(addresses)),
                    str(item.get("State", {}).get("Name", "unknown")))


def describe(refs: Sequence[InstanceRef], clients: ClientFactory
             ) -> tuple[list[Instance], list[SecurityGroup], list[NetworkAcl]]:
    """The instances (those EC2 does not return: state NOT_FOUND), their security groups and
    their VPCs' network ACLs, as EC2 has them now."""
    instances: list[Instance] = []
    groups: list[SecurityGroup] = []
    acls: list[NetworkAcl] = []
    by_region: dict[str | None, list[InstanceRef]] = {}
    for ref in refs:
        by_region.setdefault(ref.region, []).append(ref)
    for region, wanted in by_region.items():
        client = clients(region)
        name = client.meta.region_name
        # a filter, not InstanceIds: an id EC2 does not know is left out instead of failing the call
        reservations = _pages(client, "describe_instances", "Reservations", Filters=[
            {"Name": "instance-id", "Values": sorted({r.instance_id for r in wanted})}])
        found = {i["InstanceId"]: i for r in reservations for i in r.get("Instances", [])}
        here = [_instance(ref, name, found.get(ref.instance_id)) for ref in wanted]
        instances += here
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


def describe_members(group_ids: Iterable[str], region: str, clients: ClientFactory
                     ) -> dict[str, list[GroupMember]]:
    """Who is in each group: every network interface that carries it (an instance's, or a load
    balancer's, a NAT gateway's ...). A group no interface carries has no member."""
    wanted = sorted(set(group_ids))
    members: dict[str, list[GroupMember]] = {g: [] for g in wanted}
    if not wanted:
        return members
    interfaces = _pages(clients(region), "describe_network_interfaces", "NetworkInterfaces",
                        Filters=[{"Name": "group-id", "Values": wanted}])
    for interface in interfaces:
        member = GroupMember(str(interface.get("NetworkInterfaceId", "")),
                             interface.get("Attachment", {}).get("InstanceId") or None,
                             str(interface.get("Description") or interface.get("InterfaceType") or ""))
        for group in interface.get("Groups", []):
            if group.get("GroupId") in members:
                members[group["GroupId"]].append(member)
    return members


def run_check(inventory: Inventory, clients: ClientFactory | None = None) -> Protocol41Check:
    """The check on live state. Who is in the groups is read only when a judged pair is blocked
    by its security groups: it decides where the fix goes."""
    clients = clients or inventory_clients(inventory)
    instances, groups, acls = describe(instance_refs(inventory), clients)
    first = check(instances, groups, acls)
    regions = sorted({v.dst.region for v in first.verdicts if not v.security_group})
    if not regions:
        return first
    members: dict[str, list[GroupMember]] = {}
    for region in regions:
        members.update(describe_members(
            [g for i in instances if i.region == region for g in i.groups], region, clients))
    return check(instances, groups, acls, members)


@dataclass(frozen=True)
class Applied:
    fix: SecurityGroupFix
    added: bool  # False: the rule was there already (InvalidPermission.Duplicate)

    def line(self) -> str:
        verb = "added" if self.added else "already present:"
        line = f"{verb} inbound protocol 41 from {self.fix.source} on {self.fix.group_id} ({self.fix.region})"
        return f"{line}; {self.fix.outsiders_line()}" if self.fix.widens else line

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.fix.region, "group_id": self.fix.group_id, "source": self.fix.source,
                "added": self.added, "outsiders": list(self.fix.outsiders)}


@dataclass(frozen=True)
class FixOutcome:
    """What --fix did, in order: the rules applied, the one that failed (and AWS's words), and
    those not tried after it. `failed` None: every rule was applied."""

    applied: tuple[Applied, ...]
    failed: SecurityGroupFix | None = None
    error: str = ""
    not_tried: tuple[SecurityGroupFix, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return any(a.added for a in self.applied)

    def lines(self) -> list[str]:
        lines = [a.line() for a in self.applied]
        if self.failed is not None:
            f = self.failed
            lines.append(f"FAILED to add inbound protocol 41 from {f.source} on {f.group_id} "
                         f"({f.region}): {self.error}")
            lines += [f"not tried: inbound protocol 41 from {n.source} on {n.group_id} ({n.region})"
                      for n in self.not_tried]
            lines.append(f"stopped at {f.group_id}: {sum(a.added for a in self.applied)} rule(s) "
                         "added before it stay in place (listed above)")
        return lines

    def as_dict(self) -> dict[str, Any]:
        failed = None if self.failed is None else {
            "region": self.failed.region, "group_id": self.failed.group_id,
            "source": self.failed.source, "error": self.error}
        return {"applied": [a.as_dict() for a in self.applied], "failed": failed,
                "not_tried": [{"region": n.region, "group_id": n.group_id, "source": n.source}
                              for n in self.not_tried]}


def apply_security_group_fixes(fixes: Sequence[SecurityGroupFix],
                               clients: ClientFactory | None = None) -> FixOutcome:
    """AuthorizeSecurityGroupIngress for each fix, in order; a rule that exists already is fine.
    The first failure stops it: what was applied before stays, and the outcome says so."""
    clients = clients or _default_clients()
    done: list[Applied] = []
    for index, fix in enumerate(fixes):
        try:
            client = clients(fix.region)
            client.authorize_security_group_ingress(GroupId=fix.group_id,
                                                    IpPermissions=fix.ip_permissions())
            done.append(Applied(fix, True))
        except Exception as exc:
            if _error_code(exc) == "InvalidPermission.Duplicate":
                done.append(Applied(fix, False))
                continue
            mapped = exc if isinstance(exc, AwsError) else aws_error(
                exc, "AuthorizeSecurityGroupIngress", f"on {fix.group_id} in {fix.region}")
            if mapped is None:
                raise
            return FixOutcome(tuple(done), fix, str(mapped), tuple(fixes[index + 1:]))
    return FixOutcome(tuple(done))


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def protocol41_warnings(inventory: Inventory, clients: ClientFactory | None = None) -> list[str]:
    """One-line warnings for a preflight: [] when no host has data.ec2 or all is allowed. Never
    raises for AWS or inventory trouble: that becomes a warning that the check could not run."""
    if not has_ec2(inventory):
        return []
    try:
        result = run_check(inventory, clients)
    except Exception as exc:  # boto3 missing, AWS errors, a host without data.ec2.instance_id
        return [f"protocol 41 check could not run: {exc}"]
    warnings = [f"protocol 41: {p}" for p in result.problems()]
    warnings += [f"protocol 41: security group {f.group_id} lacks inbound 41 from {f.source} "
                 f"({len(f.pairs)} pair(s)); `fleet aws check --fix` adds it"
                 + (" (with --yes: it widens a group others are in)" if f.widens else "")
                 for f in result.security_group_fixes]
    warnings += [f"protocol 41: network ACL {f.acl_id} denies 41 "
                 f"{'outbound to' if f.egress else 'inbound from'} {f.cidr}; `fleet aws check` "
                 "prints the entry to add" for f in result.acl_fixes]
    return warnings
