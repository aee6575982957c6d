"""fleet.aws.protocol41 on EC2-shaped dicts: security group rules by group, CIDR and protocol,
network ACLs in rule-number order on both sides, the pairs it cannot judge, and the fixes, placed
by who is in each group, with their aws commands."""

from ipaddress import IPv4Address

import pytest

from fleet.aws.protocol41 import (
    MEMBERS_UNKNOWN,
    NOT_FOUND,
    GroupMember,
    Instance,
    check,
    network_acl_from_ec2,
    security_group_from_ec2,
)

REGION = "eu-west-1"


def instance(name, ip, groups, subnet="subnet-a", vpc="vpc-1", *, region=REGION, private_ips=None,
             state="running"):
    addresses = tuple(IPv4Address(a) for a in (private_ips or [ip]))
    return Instance(name, f"i-{name}", region, vpc, subnet, IPv4Address(ip), tuple(groups), addresses, state)


def members_of(instances, **others):
    """Who is in each group: the instances' own interfaces, plus `others` (group -> labels of
    interfaces outside the inventory)."""
    found = {}
    for i in instances:
        for g in i.groups:
            found.setdefault(g, []).append(GroupMember(f"eni-{i.name}", i.instance_id))
    for group, labels in others.items():
        found.setdefault(group, []).extend(GroupMember(f"eni-{label}", label) for label in labels)
    return found


def group(group_id, *permissions):
    return security_group_from_ec2({"GroupId": group_id, "IpPermissions": list(permissions)})


def from_group(protocol, source):
    return {"IpProtocol": protocol, "UserIdGroupPairs": [{"GroupId": source}], "IpRanges": []}


def from_cidr(protocol, cidr):
    return {"IpProtocol": protocol, "IpRanges": [{"CidrIp": cidr}], "UserIdGroupPairs": []}


SSH_ONLY = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


def entry(number, protocol, action, egress, cidr="0.0.0.0/0"):
    return {"RuleNumber": number, "Protocol": protocol, "RuleAction": action, "Egress": egress,
            "CidrBlock": cidr}


DEFAULT_DENY = [entry(32767, "-1", "deny", False), entry(32767, "-1", "deny", True)]
OPEN = [entry(100, "-1", "allow", False), entry(100, "-1", "allow", True)] + DEFAULT_DENY


def acl(acl_id, subnets, entries):
    return network_acl_from_ec2({"NetworkAclId": acl_id, "Entries": entries,
                                 "Associations": [{"SubnetId": s} for s in subnets]})


def test_groups_of_one_instance_each_get_a_rule_per_peer_address_not_per_group_pair():
    a, b = instance("a", "10.0.0.1", ["sg-a"]), instance("b", "10.0.0.2", ["sg-b"])
    result = check([a, b], [group("sg-a", SSH_ONLY), group("sg-b", SSH_ONLY)],
                   [acl("acl-1", ["subnet-a"], OPEN)], members_of([a, b]))
    assert not result.ok
    assert [(v.src.name, v.dst.name, v.security_group, v.acl_inbound) for v in result.verdicts] == [
        ("a", "b", False, True), ("b", "a", False, True)]
    fixes = {(f.group_id, f.source): (f.pairs, f.outsiders) for f in result.security_group_fixes}
    assert fixes == {("sg-b", "10.0.0.1/32"): ((("a", "b"),), ()),
                     ("sg-a", "10.0.0.2/32"): ((("b", "a"),), ())}
    assert result.security_group_fixes[0].command == (
        "aws ec2 authorize-security-group-ingress --region eu-west-1 --group-id sg-b "
        "--ip-permissions 'IpProtocol=41,IpRanges=[{CidrIp=10.0.0.1/32}]'")
    assert result.acl_fixes == ()
    assert ("security group sg-b (eu-west-1) lacks inbound protocol 41 from 10.0.0.1/32: a -> b"
            in result.render())


def test_a_group_allowing_41_from_itself_lets_its_members_through():
    hosts = [instance(n, f"10.0.0.{i}", ["sg-mesh"]) for i, n in enumerate("abc", 1)]
    result = check(hosts, [group("sg-mesh", SSH_ONLY, from_group("41", "sg-mesh"))],
                   [acl("acl-1", ["subnet-a"], OPEN)])
    assert result.ok and len(result.verdicts) == 6
    assert result.security_group_fixes == () and result.render().startswith("protocol 41 OK")


def test_a_group_every_instance_shares_and_only_they_are_in_gets_one_self_rule():
    # the brief's bed: every instance in [sg-web, sg-isatap]; sg-web also holds 20 other servers
    hosts = [instance(n, f"10.0.0.{i}", ["sg-web", "sg-isatap"]) for i, n in enumerate("abc", 1)]
    web_servers = [f"i-web{n:02}" for n in range(20)]
    result = check(hosts, [group("sg-web", SSH_ONLY), group("sg-isatap", SSH_ONLY)],
                   [acl("acl-1", ["subnet-a"], OPEN)], members_of(hosts, **{"sg-web": web_servers}))
    (fix,) = result.security_group_fixes
    assert (fix.group_id, fix.source_group, fix.source_cidr, fix.widens) == (
        "sg-isatap", "sg-isatap", None, False)
    assert len(fix.pairs) == 6


def test_without_a_clean_shared_group_the_rules_are_per_peer_address_on_a_fleet_only_group():
    hosts = [instance(f"a{i}", f"10.0.0.{i}", ["sg-web", "sg-a"]) for i in range(1, 3)]
    hosts += [instance(f"b{i}", f"10.0.1.{i}", ["sg-web", "sg-b"]) for i in range(1, 3)]
    groups = [group("sg-web", SSH_ONLY), group("sg-a", from_group("41", "sg-a")),
              group("sg-b", from_group("41", "sg-b"))]
    result = check(hosts, groups, [acl("acl-1", ["subnet-a"], OPEN)],
                   members_of(hosts, **{"sg-web": ["i-other"]}))
    fixes = result.security_group_fixes
    assert sorted((f.group_id, f.source_cidr, len(f.pairs), f.widens) for f in fixes) == [
        ("sg-a", "10.0.1.1/32", 2, False), ("sg-a", "10.0.1.2/32", 2, False),
        ("sg-b", "10.0.0.1/32", 2, False), ("sg-b", "10.0.0.2/32", 2, False)]


def test_a_rule_on_a_group_with_outside_members_names_them_and_unknown_members_count_as_outside():
    a, b = instance("a", "10.0.0.1", ["sg-web"]), instance("b", "10.0.0.2", ["sg-web"])
    groups, acls = [group("sg-web", SSH_ONLY)], [acl("acl-1", ["subnet-a"], OPEN)]
    result = check([a, b], groups, acls, members_of([a, b], **{"sg-web": ["i-web1", "i-web2"]}))
    assert [(f.group_id, f.source_cidr, f.outsiders) for f in result.security_group_fixes] == [
        ("sg-web", "10.0.0.1/32", ("i-web1", "i-web2")), ("sg-web", "10.0.0.2/32", ("i-web1", "i-web2"))]
    assert all(f.widens for f in result.security_group_fixes)
    text = result.render()
    assert "sg-web also holds 2 member(s) outside the inventory: i-web1, i-web2" in text
    assert "only with --yes" in text
    assert result.as_dict()["security_group_fixes"][0]["outsiders"] == ["i-web1", "i-web2"]
    unknown = check([a, b], groups, acls)  # nobody said who is in sg-web
    assert [f.outsiders for f in unknown.security_group_fixes] == [(MEMBERS_UNKNOWN,)] * 2


def test_a_cidr_rule_allows_the_addresses_inside_it_only():
    a, b, c = (instance("a", "10.0.0.1", ["sg-a"]), instance("b", "10.0.0.2", ["sg-a"]),
               instance("c", "192.168.5.5", ["sg-c"]))
    groups = [group("sg-a", from_cidr("41", "10.0.0.0/24")), group("sg-c", from_cidr("41", "0.0.0.0/0"))]
    result = check([a, b, c], groups, [acl("acl-1", ["subnet-a"], OPEN)], members_of([a, b, c]))
    blocked = [(v.src.name, v.dst.name) for v in result.verdicts if not v.ok]
    assert blocked == [("c", "a"), ("c", "b")]
    assert [(f.group_id, f.source_cidr) for f in result.security_group_fixes] == [("sg-a", "192.168.5.5/32")]


def test_protocol_all_allows_41_and_another_protocol_does_not():
    a, b = instance("a", "10.0.0.1", ["sg-a"]), instance("b", "10.0.0.2", ["sg-b"])
    groups = [group("sg-a", from_group("-1", "sg-b")), group("sg-b", from_group("47", "sg-a"))]
    result = check([a, b], groups, [acl("acl-1", ["subnet-a"], OPEN)])
    assert [(v.src.name, v.security_group) for v in result.verdicts] == [("a", False), ("b", True)]


def test_a_source_in_another_vpc_is_allowed_by_its_address():
    a, b = instance("a", "10.0.0.1", ["sg-a"]), instance("b", "10.1.0.2", ["sg-b"], "subnet-b", "vpc-2")
    groups = [group("sg-a", from_group("41", "sg-a")), group("sg-b", from_group("41", "sg-b"))]
    result = check([a, b], groups, [acl("acl-1", ["subnet-a"], OPEN), acl("acl-2", ["subnet-b"], OPEN)])
    assert sorted((f.group_id, f.source_cidr) for f in result.security_group_fixes) == [
        ("sg-a", "10.1.0.2/32"), ("sg-b", "10.0.0.1/32")]
    assert "IpRanges=[{CidrIp=10.0.0.1/32}]" in result.security_group_fixes[0].command + \
        result.security_group_fixes[1].command


def test_an_explicit_deny_before_an_allow_wins_and_the_fix_is_numbered_below_it():
    a, b = instance("a", "10.0.0.1", ["sg"], "subnet-a"), instance("b", "10.0.1.2", ["sg"], "subnet-b")
    groups = [group("sg", from_group("41", "sg"))]
    deny_41_in = [entry(50, "41", "deny", False, "10.0.0.0/24"), entry(100, "-1", "allow", False),
                  entry(100, "-1", "allow", True)] + DEFAULT_DENY
    result = check([a, b], groups, [acl("acl-a", ["subnet-a"], OPEN), acl("acl-b", ["subnet-b"], deny_41_in)])
    assert [(v.src.name, v.acl_inbound, v.acl_outbound) for v in result.verdicts] == [
        ("a", False, True), ("b", True, True)]
    (fix,) = result.acl_fixes
    assert (fix.acl_id, fix.egress, fix.cidr, fix.rule_number, fix.pairs) == (
        "acl-b", False, "10.0.0.1/32", 49, (("a", "b"),))
    assert fix.command == ("aws ec2 create-network-acl-entry --region eu-west-1 --network-acl-id acl-b "
                           "--ingress --rule-number 49 --protocol 41 --rule-action allow "
                           "--cidr-block 10.0.0.1/32")
    # an allow numbered after the deny changes nothing: order is by rule number, not by list order
    reordered = [entry(200, "41", "allow", False)] + deny_41_in
    again = check([a, b], groups, [acl("acl-a", ["subnet-a"], OPEN), acl("acl-b", ["subnet-b"], reordered)])
    assert not again.verdicts[0].acl_inbound


def test_the_egress_side_is_the_source_subnets_acl_and_its_default_deny():
    a, b = instance("a", "10.0.0.1", ["sg"], "subnet-a"), instance("b", "10.0.1.2", ["sg"], "subnet-b")
    groups = [group("sg", from_group("41", "sg"))]
    inbound_only = [entry(100, "-1", "allow", False)] + DEFAULT_DENY
    result = check([a, b], groups, [acl("acl-a", ["subnet-a"], inbound_only),
                                    acl("acl-b", ["subnet-b"], OPEN)])
    assert [(v.src.name, v.dst.name, v.acl_outbound) for v in result.verdicts] == [
        ("a", "b", False), ("b", "a", True)]
    (fix,) = result.acl_fixes
    assert (fix.acl_id, fix.egress, fix.cidr, fix.rule_number) == ("acl-a", True, "10.0.1.2/32", 32766)
    assert "--egress" in fix.command
    assert ("network ACL acl-a (eu-west-1) denies protocol 41 outbound to 10.0.1.2/32: a -> b"
            in result.render())


def test_a_subnet_without_an_acl_is_a_pair_not_judged_not_a_pass():
    a, b = instance("a", "10.0.0.1", ["sg"]), instance("b", "10.0.0.2", ["sg"])
    result = check([a, b], [group("sg", from_group("41", "sg"))], [])
    assert not result.ok and result.verdicts == ()
    reason = ("a: no network ACL is associated with its subnet subnet-a; "
              "b: no network ACL is associated with its subnet subnet-a")
    assert [(u.src, u.dst, u.reason) for u in result.unjudged] == [("a", "b", reason), ("b", "a", reason)]
    assert result.as_dict()["unjudged"][0] == {"src": "a", "dst": "b", "reason": reason}


GOOD_GROUPS = [group("sg", from_group("41", "sg"))]
GOOD_ACLS = [acl("acl-1", ["subnet-a", "subnet-b"], OPEN)]


def test_instances_in_two_regions_are_pairs_not_judged_and_zero_judged_pairs_is_never_ok():
    a = instance("a", "10.0.0.1", ["sg"])
    b = instance("b", "10.0.0.2", ["sg"], "subnet-b", region="us-east-1")
    result = check([a, b], GOOD_GROUPS, GOOD_ACLS)
    assert not result.ok and result.verdicts == () and len(result.unjudged) == 2
    across = "a is in eu-west-1, b in us-east-1: pairs across regions are not judged"
    assert result.unjudged[0].reason == across
    text = result.render()
    assert text.startswith(
        "protocol 41 NOT OK: 2 instances, 0 directed pairs judged, 0 blocked, 2 not judged")
    assert f"not judged: {across}: a -> b, b -> a" in text
    assert "no pair was judged (2 instance(s)): nothing is verified" in text
    document = result.as_dict()
    assert document["ok"] is False and document["judged_pairs"] == 0 and document["unjudged_pairs"] == 2


def test_one_instance_alone_is_not_ok():
    result = check([instance("a", "10.0.0.1", ["sg"])], GOOD_GROUPS, GOOD_ACLS)
    assert not result.ok and "no pair was judged (1 instance(s))" in result.render()


@pytest.mark.parametrize(("changes", "reason"), [
    ({"state": "stopped"}, "c: instance i-c is stopped, not running"),
    ({"state": NOT_FOUND}, "c: instance i-c not found in eu-west-1"),
    ({"private_ips": ["10.0.0.99"]},
     "c: data.ipv4 10.0.0.3 is not a private address of i-c (it has 10.0.0.99)"),
])
def test_an_instance_that_cannot_be_judged_fails_the_check_even_when_every_judged_pair_is_fine(
        changes, reason):
    hosts = [instance("a", "10.0.0.1", ["sg"]), instance("b", "10.0.0.2", ["sg"]),
             instance("c", "10.0.0.3", ["sg"], **changes)]
    result = check(hosts, GOOD_GROUPS, GOOD_ACLS)
    assert [(v.src.name, v.dst.name, v.ok) for v in result.verdicts] == [("a", "b", True), ("b", "a", True)]
    assert sorted((u.src, u.dst) for u in result.unjudged) == [
        ("a", "c"), ("b", "c"), ("c", "a"), ("c", "b")]
    assert all(u.reason.startswith(reason) for u in result.unjudged)
    assert not result.ok and result.render().startswith("protocol 41 NOT OK")
    assert result.as_dict()["ok"] is False and result.security_group_fixes == ()


def test_the_rules_are_judged_for_data_ipv4_and_a_secondary_address_is_said():
    # a CIDR rule that holds a's primary address but not the tunnel's (data.ipv4, a secondary)
    a = instance("a", "10.0.5.1", ["sg-a"], private_ips=["10.0.0.1", "10.0.5.1"])
    b = instance("b", "10.0.0.2", ["sg-b"])
    groups = [group("sg-a", from_cidr("41", "10.0.0.0/24")), group("sg-b", from_cidr("41", "10.0.0.0/24"))]
    result = check([a, b], groups, GOOD_ACLS, members_of([a, b]))
    assert [(v.src.name, v.security_group) for v in result.verdicts] == [("a", False), ("b", True)]
    assert [(f.group_id, f.source_cidr) for f in result.security_group_fixes] == [("sg-b", "10.0.5.1/32")]
    assert result.notes == ("a: data.ipv4 10.0.5.1 is a secondary private address of i-a (its primary is "
                            "10.0.0.1); the rules are judged for 10.0.5.1",)
    assert "note: a: data.ipv4 10.0.5.1 is a secondary" in result.render()
