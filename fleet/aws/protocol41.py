"""Does EC2 let protocol 41 (ISATAP: IPv6 in IPv4) through between every pair of instances?

Pure: it reads the shapes EC2's API returns (IpPermissions, network ACL Entries and
Associations) as plain dicts and decides, for every ordered pair (src, dst) in one region:

- a security group of dst allows inbound protocol 41 ("41" or "-1") from src, by a group src
  belongs to or by a CIDR holding src's private address (security groups are stateful, but both
  ends of a mesh start packets, so the reverse pair is checked too);
- the network ACL of dst's subnet allows inbound 41 from src's address, and the ACL of src's
  subnet allows outbound 41 to dst's address: rules in rule-number order, the first that matches
  decides, none matching is the default deny (ACLs are stateless: the reply is the reverse pair).

What is missing comes back as fixes: one security group rule per (dst group, src group), and
one ACL entry per (ACL, direction, peer address), each with the `aws ec2` command that adds it.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_network
from typing import Any

PROTOCOL = "41"
ALL_PROTOCOLS = "-1"
MAX_RULE_NUMBER = 32766  # EC2's highest user rule number; 32767 is the default deny ("*")


@dataclass(frozen=True)
class Instance:
    """An EC2 instance as the check needs it; `name` is the inventory's host name."""

    name: str
    instance_id: str
    region: str
    vpc_id: str
    subnet_id: str
    private_ip: IPv4Address
    groups: tuple[str, ...]


@dataclass(frozen=True)
class IngressRule:
    protocol: str
    group_ids: tuple[str, ...] = ()
    cidrs: tuple[IPv4Network, ...] = ()

    def carries_41(self) -> bool:
        return self.protocol in (PROTOCOL, ALL_PROTOCOLS)


@dataclass(frozen=True)
class SecurityGroup:
    group_id: str
    rules: tuple[IngressRule, ...]

    def allows_41_from(self, source: Instance) -> bool:
        return any(rule.carries_41() and (set(rule.group_ids) & set(source.groups)
                                          or any(source.private_ip in c for c in rule.cidrs))
                   for rule in self.rules)


@dataclass(frozen=True)
class AclEntry:
    rule_number: int
    protocol: str
    allow: bool
    egress: bool
    cidr: IPv4Network


@dataclass(frozen=True)
class NetworkAcl:
    acl_id: str
    subnets: tuple[str, ...]
    entries: tuple[AclEntry, ...]

    def deciding_entry(self, *, egress: bool, peer: IPv4Address) -> AclEntry | None:
        """The entry that decides protocol 41 to/from `peer`; None: the default deny."""
        for entry in sorted((e for e in self.entries if e.egress == egress),
                            key=lambda e: e.rule_number):
            if entry.protocol in (PROTOCOL, ALL_PROTOCOLS) and peer in entry.cidr:
                return entry
        return None

    def allows_41(self, *, egress: bool, peer: IPv4Address) -> bool:
        entry = self.deciding_entry(egress=egress, peer=peer)
        return entry is not None and entry.allow


def security_group_from_ec2(group: Mapping[str, Any]) -> SecurityGroup:
    """A SecurityGroup from one item of DescribeSecurityGroups' SecurityGroups (inbound only)."""
    rules = []
    for permission in group.get("IpPermissions", []):
        rules.append(IngressRule(
            protocol=str(permission.get("IpProtocol", "")),
            group_ids=tuple(p["GroupId"] for p in permission.get("UserIdGroupPairs", []) if "GroupId" in p),
            cidrs=tuple(IPv4Network(r["CidrIp"], strict=False) for r in permission.get("IpRanges", [])
                        if "CidrIp" in r)))
    return SecurityGroup(group["GroupId"], tuple(rules))


def network_acl_from_ec2(acl: Mapping[str, Any]) -> NetworkAcl:
    """A NetworkAcl from one item of DescribeNetworkAcls' NetworkAcls (IPv4 entries only)."""
    entries = []
    for entry in acl.get("Entries", []):
        if "CidrBlock" not in entry:
            continue  # an IPv6 entry: protocol 41 rides on IPv4
        entries.append(AclEntry(int(entry["RuleNumber"]), str(entry["Protocol"]),
                                entry["RuleAction"] == "allow", bool(entry["Egress"]),
                                IPv4Network(entry["CidrBlock"], strict=False)))
    subnets = tuple(a["SubnetId"] for a in acl.get("Associations", []) if "SubnetId" in a)
    return NetworkAcl(acl["NetworkAclId"], subnets, tuple(entries))


@dataclass(frozen=True)
class PairVerdict:
    """One direction, src -> dst: which of the three gates let protocol 41 through."""

    src: Instance
    dst: Instance
    security_group: bool
    acl_inbound: bool   # dst's subnet ACL, inbound from src
    acl_outbound: bool  # src's subnet ACL, outbound to dst

    @property
    def ok(self) -> bool:
        return self.security_group and self.acl_inbound and self.acl_outbound

    def missing(self) -> list[str]:
        return [what for what, ok in (
            (f"security group inbound on {self.dst.name}", self.security_group),
            (f"network ACL inbound on {self.dst.subnet_id}", self.acl_inbound),
            (f"network ACL outbound on {self.src.subnet_id}", self.acl_outbound)) if not ok]


def _pair_names(pairs: Iterable[tuple[str, str]]) -> list[str]:
    return [f"{s} -> {d}" for s, d in pairs]


@dataclass(frozen=True)
class SecurityGroupFix:
    """One inbound rule for protocol 41 on `group_id`: from a group, or from one address."""

    region: str
    group_id: str
    source_group: str | None
    source_cidr: str | None
    pairs: tuple[tuple[str, str], ...]  # (src name, dst name) this rule lets through

    def ip_permissions(self) -> list[dict[str, Any]]:
        """The IpPermissions of AuthorizeSecurityGroupIngress."""
        permission: dict[str, Any] = {"IpProtocol": PROTOCOL, "FromPort": -1, "ToPort": -1}
        if self.source_group is not None:
            permission["UserIdGroupPairs"] = [{"GroupId": self.source_group}]
        else:
            permission["IpRanges"] = [{"CidrIp": self.source_cidr}]
        return [permission]

    @property
    def source(self) -> str:
        return self.source_group or str(self.source_cidr)

    @property
    def command(self) -> str:
        if self.source_group is not None:
            permissions = f"IpProtocol={PROTOCOL},UserIdGroupPairs=[{{GroupId={self.source_group}}}]"
        else:
            permissions = f"IpProtocol={PROTOCOL},IpRanges=[{{CidrIp={self.source_cidr}}}]"
        return (f"aws ec2 authorize-security-group-ingress --region {shlex.quote(self.region)} "
                f"--group-id {shlex.quote(self.group_id)} --ip-permissions {shlex.quote(permissions)}")

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "group_id": self.group_id, "source_group": self.source_group,
                "source_cidr": self.source_cidr, "pairs": _pair_names(self.pairs),
                "command": self.command}


@dataclass(frozen=True)
class NetworkAclFix:
    """One ACL entry that allows protocol 41 to (egress) or from (ingress) one address, numbered
    below the entry that denies it now; None when no number is free there."""

    region: str
    acl_id: str
    egress: bool
    cidr: str
    rule_number: int | None
    pairs: tuple[tuple[str, str], ...]

    @property
    def command(self) -> str:
        if self.rule_number is None:
            return ""
        return (f"aws ec2 create-network-acl-entry --region {shlex.quote(self.region)} "
                f"--network-acl-id {shlex.quote(self.acl_id)} {'--egress' if self.egress else '--ingress'} "
                f"--rule-number {self.rule_number} --protocol {PROTOCOL} --rule-action allow "
                f"--cidr-block {self.cidr}")

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "acl_id": self.acl_id,
                "direction": "egress" if self.egress else "ingress", "cidr": self.cidr,
                "rule_number": self.rule_number, "pairs": _pair_names(self.pairs),
                "command": self.command or None}


@dataclass(frozen=True)
class Protocol41Check:
    instances: tuple[Instance, ...]
    verdicts: tuple[PairVerdict, ...]
    security_group_fixes: tuple[SecurityGroupFix, ...]
    acl_fixes: tuple[NetworkAclFix, ...]
    problems: tuple[str, ...] = field(default=())  # what could not be judged (a subnet without ACL)

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts) and not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "instances": [{"name": i.name, "instance_id": i.instance_id, "region": i.region,
                           "private_ip": str(i.private_ip), "subnet_id": i.subnet_id,
                           "security_groups": list(i.groups)} for i in self.instances],
            "pairs": [{"src": v.src.name, "dst": v.dst.name, "ok": v.ok,
                       "security_group": v.security_group, "acl_inbound": v.acl_inbound,
                       "acl_outbound": v.acl_outbound} for v in self.verdicts],
            "security_group_fixes": [f.as_dict() for f in self.security_group_fixes],
            "network_acl_fixes": [f.as_dict() for f in self.acl_fixes],
            "problems": list(self.problems),
        }

    def render(self) -> str:
        blocked = [v for v in self.verdicts if not v.ok]
        head = (f"protocol 41 {'OK' if self.ok else 'NOT OK'}: {len(self.instances)} instances, "
                f"{len(self.verdicts)} directed pairs, {len(blocked)} blocked")
        lines = [head]
        for problem in self.problems:
            lines.append(f"  problem: {problem}")
        for fix in self.security_group_fixes:
            lines.append(f"security group {fix.group_id} ({fix.region}) lacks inbound protocol 41 "
                         f"from {fix.source}: {', '.join(_pair_names(fix.pairs))}")
            lines.append(f"  fix: {fix.command}")
        for acl in self.acl_fixes:
            direction = "outbound to" if acl.egress else "inbound from"
            lines.append(f"network ACL {acl.acl_id} ({acl.region}) denies protocol 41 {direction} "
                         f"{acl.cidr}: {', '.join(_pair_names(acl.pairs))}")
            lines.append(f"  fix: {acl.command}" if acl.command else
                         f"  fix: no rule number is free below the denying entry in {acl.acl_id}")
        return "\n".join(lines)


def check(instances: Sequence[Instance], groups: Iterable[SecurityGroup],
          acls: Iterable[NetworkAcl]) -> Protocol41Check:
    """Every ordered pair of instances in the same region, judged; the fixes for what is missing."""
    by_group = {g.group_id: g for g in groups}
    acl_list = list(acls)
    acl_of = {subnet: acl for acl in acl_list for subnet in acl.subnets}
    problems = [f"{i.name}: no network ACL is associated with its subnet {i.subnet_id}"
                for i in instances if i.subnet_id not in acl_of]
    problems += [f"{i.name}: its security group {g} was not described"
                 for i in instances for g in i.groups if g not in by_group]
    verdicts = []
    for src in instances:
        for dst in instances:
            if src is dst or src.region != dst.region:
                continue
            sg = any(by_group[g].allows_41_from(src) for g in dst.groups if g in by_group)
            inbound = dst.subnet_id in acl_of and acl_of[dst.subnet_id].allows_41(
                egress=False, peer=src.private_ip)
            outbound = src.subnet_id in acl_of and acl_of[src.subnet_id].allows_41(
                egress=True, peer=dst.private_ip)
            verdicts.append(PairVerdict(src, dst, sg, inbound, outbound))
    return Protocol41Check(tuple(instances), tuple(verdicts),
                           tuple(_security_group_fixes(verdicts)), tuple(_acl_fixes(verdicts, acl_of)),
                           tuple(problems))


def _security_group_fixes(verdicts: Sequence[PairVerdict]) -> list[SecurityGroupFix]:
    """One rule per (dst's first group, src's first group); src's address when the two are in
    different VPCs (a group reference does not cross VPCs) or src has no group."""
    wanted: dict[tuple[str, str, str | None, str | None], list[tuple[str, str]]] = {}
    for v in verdicts:
        if v.security_group or not v.dst.groups:
            continue
        key: tuple[str, str, str | None, str | None]
        if v.src.groups and v.src.vpc_id == v.dst.vpc_id:
            key = (v.dst.region, v.dst.groups[0], v.src.groups[0], None)
        else:
            key = (v.dst.region, v.dst.groups[0], None, f"{v.src.private_ip}/32")
        wanted.setdefault(key, []).append((v.src.name, v.dst.name))
    return [SecurityGroupFix(region, group, source_group, source_cidr, tuple(pairs))
            for (region, group, source_group, source_cidr), pairs in wanted.items()]


def _acl_fixes(verdicts: Sequence[PairVerdict], acl_of: Mapping[str, NetworkAcl]) -> list[NetworkAclFix]:
    wanted: dict[tuple[str, str, bool, IPv4Address], list[tuple[str, str]]] = {}
    for v in verdicts:
        if not v.acl_inbound and v.dst.subnet_id in acl_of:
            wanted.setdefault((v.dst.region, acl_of[v.dst.subnet_id].acl_id, False, v.src.private_ip),
                              []).append((v.src.name, v.dst.name))
        if not v.acl_outbound and v.src.subnet_id in acl_of:
            wanted.setdefault((v.src.region, acl_of[v.src.subnet_id].acl_id, True, v.dst.private_ip),
                              []).append((v.src.name, v.dst.name))
    by_id = {acl.acl_id: acl for acl in acl_of.values()}
    taken: dict[tuple[str, bool], set[int]] = {}
    fixes = []
    for (region, acl_id, egress, peer), pairs in wanted.items():
        acl = by_id[acl_id]
        used = taken.setdefault((acl_id, egress), {e.rule_number for e in acl.entries if e.egress == egress})
        denying = acl.deciding_entry(egress=egress, peer=peer)
        number = _free_number_below(denying.rule_number if denying else MAX_RULE_NUMBER + 1, used)
        if number is not None:
            used.add(number)
        fixes.append(NetworkAclFix(region, acl_id, egress, str(ip_network(f"{peer}/32")), number,
                                   tuple(pairs)))
    return fixes


def _free_number_below(limit: int, used: set[int]) -> int | None:
    for number in range(min(limit - 1, MAX_RULE_NUMBER), 0, -1):
        if number not in used:
            return number
    return None
