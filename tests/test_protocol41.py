"""fleet.aws.protocol41 on EC2-shaped dicts: security group rules by group, CIDR and protocol,
network ACLs in rule-number order on both sides, and the fixes with their aws commands."""

from ipaddress import IPv4Address

from fleet.aws.protocol41 import Instance, check, network_acl_from_ec2, security_group_from_ec2

REGION = "eu-west-1"


def instance(name, ip, groups, subnet="subnet-a", vpc="vpc-1"):
    return Instance(name, f"i-{name}", REGION, vpc, subnet, IPv4Address(ip), tuple(groups))


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


def test_a_group_that_allows_only_ssh_blocks_both_directions_with_one_fix_per_group_pair():
    a, b = instance("a", "10.0.0.1", ["sg-a"]), instance("b", "10.0.0.2", ["sg-b"])
    result = check([a, b], [group("sg-a", SSH_ONLY), group("sg-b", SSH_ONLY)],
                   [acl("acl-1", ["subnet-a"], OPEN)])
    assert not result.ok
    assert [(v.src.name, v.dst.name, v.security_group, v.acl_inbound) for v in result.verdicts] == [
        ("a", "b", False, True), ("b", "a", False, True)]
    fixes = {(f.group_id, f.source_group): f.pairs for f in result.security_group_fixes}
    assert fixes == {("sg-b", "sg-a"): (("a", "b"),), ("sg-a", "sg-b"): (("b", "a"),)}
    assert result.security_group_fixes[0].command == (
        "aws ec2 authorize-security-group-ingress --region eu-west-1 --group-id sg-b "
        "--ip-permissions 'IpProtocol=41,UserIdGroupPairs=[{GroupId=sg-a}]'")
    assert result.acl_fixes == ()
    assert "security group sg-b (eu-west-1) lacks inbound protocol 41 from sg-a: a -> b" in result.render()


def test_a_group_allowing_41_from_itself_lets_its_members_through():
    hosts = [instance(n, f"10.0.0.{i}", ["sg-mesh"]) for i, n in enumerate("abc", 1)]
    result = check(hosts, [group("sg-mesh", SSH_ONLY, from_group("41", "sg-mesh"))],
                   [acl("acl-1", ["subnet-a"], OPEN)])
    assert result.ok and len(result.verdicts) == 6
    assert result.security_group_fixes == () and result.render().startswith("protocol 41 OK")


def test_many_instances_in_two_groups_need_one_rule_per_group_pair_not_per_instance():
    hosts = [instance(f"a{i}", f"10.0.0.{i}", ["sg-a"]) for i in range(1, 4)]
    hosts += [instance(f"b{i}", f"10.0.1.{i}", ["sg-b"]) for i in range(1, 4)]
    groups = [group("sg-a", from_group("41", "sg-a")), group("sg-b", from_group("41", "sg-b"))]
    result = check(hosts, groups, [acl("acl-1", ["subnet-a"], OPEN)])
    assert sorted((f.group_id, f.source_group, len(f.pairs)) for f in result.security_group_fixes) == [
        ("sg-a", "sg-b", 9), ("sg-b", "sg-a", 9)]


def test_a_cidr_rule_allows_the_addresses_inside_it_only():
    a, b, c = (instance("a", "10.0.0.1", ["sg-a"]), instance("b", "10.0.0.2", ["sg-a"]),
               instance("c", "192.168.5.5", ["sg-c"]))
    groups = [group("sg-a", from_cidr("41", "10.0.0.0/24")), group("sg-c", from_cidr("41", "0.0.0.0/0"))]
    result = check([a, b, c], groups, [acl("acl-1", ["subnet-a"], OPEN)])
    blocked = [(v.src.name, v.dst.name) for v in result.verdicts if not v.ok]
    assert blocked == [("c", "a"), ("c", "b")]
    assert [(f.group_id, f.source_group) for f in result.security_group_fixes] == [("sg-a", "sg-c")]


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


def test_a_subnet_without_an_acl_is_a_problem_not_a_pass():
    a, b = instance("a", "10.0.0.1", ["sg"]), instance("b", "10.0.0.2", ["sg"])
    result = check([a, b], [group("sg", from_group("41", "sg"))], [])
    assert not result.ok
    assert result.problems[0] == "a: no network ACL is associated with its subnet subnet-a"
    assert result.as_dict()["problems"] == list(result.problems)
