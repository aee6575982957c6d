"""Does EC2 let protocol 41 (ISATAP: IPv6 in IPv4) through between every pair of instances?

Pure: it reads the shapes EC2's API returns (IpPermissions, network ACL Entries and
Associations) as plain dicts and decides, for every ordered pair (src, dst) of the inventory:

- whether the pair can be judged at all: both instances found and running, in one region, with
  the inventory's data.ipv4 among the instance's private addresses, their groups and subnet ACLs
  described. A pair that cannot be judged is listed with its reason and the check is not OK;
  nor is a check that judged no pair: nothing verified is not green;
- a security group of dst allows inbound protocol 41 ("41" or "-1") from src, by a group src
  belongs to or by a CIDR holding src's data.ipv4 (the tunnel's address: the address the
  packets leave from). Security groups are stateful, but both ends of a mesh start packets, so
  the reverse pair is checked too;
- the network ACL of dst's subnet allows inbound 41 from src's address, and the ACL of src's
  subnet allows outbound 41 to dst's address: rules in rule-number order, the first that matches
  decides, none matching is the default deny (ACLs are stateless: the reply is the reverse pair).

What is missing comes back as fixes, each with the `aws ec2` command that adds it. Security
group rules are planned narrowest first, from who is in each group (`members`, read from the
groups' network interfaces): one self-referencing rule on a group that every instance shares and
nothing outside the inventory is in; else one rule per peer address (/32) on a group of the
destination that only inventory instances are in; else, on a group that holds others too, the
/32 rule with those others named (`SecurityGroupFix.outsiders`): applying it widens their group.
ACL entries: one per (ACL, direction, peer address).
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


RUNNING = "running"
NOT_FOUND = "not-found"  # not an EC2 state: DescribeInstances did not return the instance


@dataclass(frozen=True)
class Instance:
    """An inventory host's EC2 instance as the check needs it. `name` and `ipv4` are the
    inventory's (host name, data.ipv4: the tunnel's address, which the rules must let through);
    the rest is EC2's: `private_ips` every private IPv4 on the instance's interfaces, the primary
    first, and `state` its state name (NOT_FOUND when EC2 did not return it)."""

    name: str
    instance_id: str
    region: str
    vpc_id: str
    subnet_id: str
    ipv4: IPv4Address
    groups: tuple[str, ...]
    private_ips: tuple[IPv4Address, ...]
    state: str = RUNNING


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
                                          or any(source.ipv4 in c for c in rule.cidrs))
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
class Unjudged:
    """An ordered pair the check could not judge, and why (both ends' reasons, joined)."""

    src: str
    dst: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"src": self.src, "dst": self.dst, "reason": self.reason}


@dataclass(frozen=True)
class GroupMember:
    """A network interface in a security group, and the instance it is attached to (None: an
    interface of something else: a load balancer, a NAT gateway, a Lambda ...)."""

    interface_id: str
    instance_id: str | None
    description: str = ""

    @property
    def label(self) -> str:
        if self.instance_id:
            return self.instance_id
        return f"{self.interface_id} ({self.description})" if self.description else self.interface_id


MEMBERS_UNKNOWN = "(its members were not read)"
LISTED_OUTSIDERS = 10  # outsiders named in a line; JSON has them all


@dataclass(frozen=True)
class SecurityGroupFix:
    """One inbound rule for protocol 41 on `group_id`: from a group, or from one address.
    `outsiders`: who else is in `group_id` (not in the inventory): the rule lets protocol 41 from
    the source reach them too, so it is applied only when asked to widen their group."""

    region: str
    group_id: str
    source_group: str | None
    source_cidr: str | None
    pairs: tuple[tuple[str, str], ...]  # (src name, dst name) this rule lets through
    outsiders: tuple[str, ...] = ()

    @property
    def widens(self) -> bool:
        return bool(self.outsiders)

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

    def outsiders_line(self) -> str:
        shown = ", ".join(self.outsiders[:LISTED_OUTSIDERS])
        more = len(self.outsiders) - LISTED_OUTSIDERS
        return (f"{self.group_id} also holds {len(self.outsiders)} member(s) outside the inventory: "
                f"{shown}{f' and {more} more' if more > 0 else ''}")

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "group_id": self.group_id, "source_group": self.source_group,
                "source_cidr": self.source_cidr, "pairs": _pair_names(self.pairs),
                "widens": self.widens, "outsiders": list(self.outsiders), "command": self.command}



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
    """The one verdict: `ok` only when at least one pair was judged, every judged pair lets
    protocol 41 through and no pair was left unjudged. Every output renders this object."""

    instances: tuple[Instance, ...]
    verdicts: tuple[PairVerdict, ...]
    unjudged: tuple[Unjudged, ...]
    security_group_fixes: tuple[SecurityGroupFix, ...]
    acl_fixes: tuple[NetworkAclFix, ...]
    notes: tuple[str, ...] = field(default=())  # true and worth saying, not a fault

    @property
    def blocked(self) -> tuple[PairVerdict, ...]:
        return tuple(v for v in self.verdicts if not v.ok)

    @property
    def ok(self) -> bool:
        return bool(self.verdicts) and not self.blocked and not self.unjudged

    def problems(self) -> list[str]:
        """Every reason it is not OK besides the blocked pairs, one line each: the reasons pairs
        were not judged (with their pairs), and a check that judged nothing."""
        lines = [f"not judged: {reason}: {', '.join(_pair_names(pairs))}"
                 for reason, pairs in _by_reason(self.unjudged).items()]
        if not self.verdicts:
            lines.append(f"no pair was judged ({len(self.instances)} instance(s)): nothing is verified")
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "judged_pairs": len(self.verdicts),
            "blocked_pairs": len(self.blocked),
            "unjudged_pairs": len(self.unjudged),
            "instances": [{"name": i.name, "instance_id": i.instance_id, "region": i.region,
                           "state": i.state, "ipv4": str(i.ipv4),
                           "private_ips": [str(a) for a in i.private_ips], "vpc_id": i.vpc_id,
                           "subnet_id": i.subnet_id, "security_groups": list(i.groups)}
                          for i in self.instances],
            "pairs": [{"src": v.src.name, "dst": v.dst.name, "ok": v.ok,
                       "security_group": v.security_group, "acl_inbound": v.acl_inbound,
                       "acl_outbound": v.acl_outbound} for v in self.verdicts],
            "unjudged": [u.as_dict() for u in self.unjudged],
            "security_group_fixes": [f.as_dict() for f in self.security_group_fixes],
            "network_acl_fixes": [f.as_dict() for f in self.acl_fixes],
            "problems": self.problems(),
            "notes": list(self.notes),
        }

    def render(self) -> str:
        head = (f"protocol 41 {'OK' if self.ok else 'NOT OK'}: {len(self.instances)} instances, "
                f"{len(self.verdicts)} directed pairs judged, {len(self.blocked)} blocked, "
                f"{len(self.unjudged)} not judged")
        lines = [head]
        lines += [f"  {problem}" for problem in self.problems()]
        lines += [f"  note: {note}" for note in self.notes]
        for fix in self.security_group_fixes:
            lines.append(f"security group {fix.group_id} ({fix.region}) lacks inbound protocol 41 "
                         f"from {fix.source}: {', '.join(_pair_names(fix.pairs))}")
            if fix.widens:
                lines.append(f"  {fix.outsiders_line()}; `--fix` adds this rule only with --yes")
            lines.append(f"  fix: {fix.command}")
        for acl in self.acl_fixes:
            direction = "outbound to" if acl.egress else "inbound from"
            lines.append(f"network ACL {acl.acl_id} ({acl.region}) denies protocol 41 {direction} "
                         f"{acl.cidr}: {', '.join(_pair_names(acl.pairs))}")
            lines.append(f"  fix: {acl.command}" if acl.command else
                         f"  fix: no rule number is free below the denying entry in {acl.acl_id}")
        return "\n".join(lines)


def _by_reason(unjudged: Iterable[Unjudged]) -> dict[str, list[tuple[str, str]]]:
    grouped: dict[str, list[tuple[str, str]]] = {}
    for u in unjudged:
        grouped.setdefault(u.reason, []).append((u.src, u.dst))
    return grouped


def check(instances: Sequence[Instance], groups: Iterable[SecurityGroup],
          acls: Iterable[NetworkAcl],
          members: Mapping[str, Sequence[GroupMember]] | None = None) -> Protocol41Check:
    """Every ordered pair of the instances judged, or listed with why it could not be; the fixes
    for what is missing. `members`: who is in each security group (None, or a group missing
    from it: not known, so a rule on that group is planned as one that widens it)."""
    by_group = {g.group_id: g for g in groups}
    acl_of = {subnet: acl for acl in acls for subnet in acl.subnets}
    why_not = {i.name: _why_not_judged(i, by_group, acl_of) for i in instances}
    order = {i.name: n for n, i in enumerate(instances)}
    verdicts = []
    unjudged = []
    for src in instances:
        for dst in instances:
            if src is dst:
                continue
            first, second = (src, dst) if order[src.name] < order[dst.name] else (dst, src)
            reasons = why_not[first.name] + why_not[second.name]  # the same words both ways
            if not reasons and src.region != dst.region:
                reasons = [f"{first.name} is in {first.region}, {second.name} in {second.region}: "
                           "pairs across regions are not judged"]
            if reasons:
                unjudged.append(Unjudged(src.name, dst.name, "; ".join(reasons)))
                continue
            sg = any(by_group[g].allows_41_from(src) for g in dst.groups)
            inbound = acl_of[dst.subnet_id].allows_41(egress=False, peer=src.ipv4)
            outbound = acl_of[src.subnet_id].allows_41(egress=True, peer=dst.ipv4)
            verdicts.append(PairVerdict(src, dst, sg, inbound, outbound))
    notes = [f"{i.name}: data.ipv4 {i.ipv4} is a secondary private address of {i.instance_id} "
             f"(its primary is {i.private_ips[0]}); the rules are judged for {i.ipv4}"
             for i in instances if not why_not[i.name] and i.private_ips and i.ipv4 != i.private_ips[0]]
    fleet_ids = {i.instance_id for i in instances}
    return Protocol41Check(tuple(instances), tuple(verdicts), tuple(unjudged),
                           tuple(_security_group_fixes(verdicts, members, fleet_ids)),
                           tuple(_acl_fixes(verdicts, acl_of)), tuple(notes))


def _why_not_judged(instance: Instance, by_group: Mapping[str, SecurityGroup],
                    acl_of: Mapping[str, NetworkAcl]) -> list[str]:
    """Why no pair with this instance can be judged; [] when they can."""
    i = instance
    if i.state == NOT_FOUND:
        return [f"{i.name}: instance {i.instance_id} not found in {i.region} (a wrong id, "
                "terminated, or in an account these credentials do not see)"]
    if i.state != RUNNING:
        return [f"{i.name}: instance {i.instance_id} is {i.state}, not running"]
    reasons = []
    if i.ipv4 not in i.private_ips:
        have = ", ".join(str(a) for a in i.private_ips) or "none"
        reasons.append(f"{i.name}: data.ipv4 {i.ipv4} is not a private address of {i.instance_id} "
                       f"(it has {have})")
    if i.subnet_id not in acl_of:
        reasons.append(f"{i.name}: no network ACL is associated with its subnet {i.subnet_id or '(none)'}")
    reasons += [f"{i.name}: its security group {g} was not described" for g in i.groups if g not in by_group]
    if not i.groups:
        reasons.append(f"{i.name}: instance {i.instance_id} has no security group")
    return reasons


def _security_group_fixes(verdicts: Sequence[PairVerdict],
                          members: Mapping[str, Sequence[GroupMember]] | None,
                          fleet_ids: set[str]) -> list[SecurityGroupFix]:
    """The narrowest rules that let the blocked pairs through, region by region (see the module's
    docstring): a self-reference on a group every judged instance shares and only they are in;
    else the source's data.ipv4/32 on a destination group only inventory instances are in; else
    that /32 on the destination group with the fewest outsiders, who are named."""

    def outsiders(group: str) -> tuple[str, ...]:
        if members is None or group not in members:
            return (MEMBERS_UNKNOWN,)
        return tuple(sorted({m.label for m in members[group] if m.instance_id not in fleet_ids}))

    fixes: list[SecurityGroupFix] = []
    regions = dict.fromkeys(v.dst.region for v in verdicts)
    for region in regions:
        judged = [v for v in verdicts if v.dst.region == region]
        blocked = [v for v in judged if not v.security_group]
        if not blocked:
            continue
        instances = list({id(i): i for v in judged for i in (v.src, v.dst)}.values())
        shared = [g for g in instances[0].groups if all(g in i.groups for i in instances)]
        clean_shared = [g for g in shared if not outsiders(g)]
        if clean_shared:
            group = clean_shared[0]
            fixes.append(SecurityGroupFix(region, group, group, None,
                                          tuple((v.src.name, v.dst.name) for v in blocked)))
            continue
        wanted: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for v in blocked:
            clean = [g for g in v.dst.groups if not outsiders(g)]
            if clean:  # the one most of the fleet is in: the fewest rules in all
                group = max(clean, key=lambda g: sum(g in i.groups for i in instances))
            else:
                group = min(v.dst.groups, key=lambda g: len(outsiders(g)))
            wanted.setdefault((group, f"{v.src.ipv4}/32"), []).append((v.src.name, v.dst.name))
        fixes += [SecurityGroupFix(region, group, None, cidr, tuple(pairs), outsiders(group))
                  for (group, cidr), pairs in wanted.items()]
    return fixes


def _acl_fixes(verdicts: Sequence[PairVerdict], acl_of: Mapping[str, NetworkAcl]) -> list[NetworkAclFix]:
    wanted: dict[tuple[str, str, bool, IPv4Address], list[tuple[str, str]]] = {}
    for v in verdicts:
        if not v.acl_inbound and v.dst.subnet_id in acl_of:
            wanted.setdefault((v.dst.region, acl_of[v.dst.subnet_id].acl_id, False, v.src.ipv4),
                              []).append((v.src.name, v.dst.name))
        if not v.acl_outbound and v.src.subnet_id in acl_of:
            wanted.setdefault((v.src.region, acl_of[v.src.subnet_id].acl_id, True, v.dst.ipv4),
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
