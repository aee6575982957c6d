"""`fleet aws check` end to end, as a subprocess, against moto on 127.0.0.1: instances made in
moto and named by a plain inventory (data.ec2.instance_id, data.ec2.region); the groups, the
network ACLs, --fix and a second --fix, --json and the exit codes. The preflight warnings too."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from motoserver import REGION

REPO = Path(__file__).resolve().parents[2]


def fleet(env, *argv):
    done = subprocess.run([sys.executable, "-m", "fleet", *map(str, argv)], capture_output=True, text=True,
                          cwd=REPO, timeout=120, env={**os.environ, **env, "PYTHONPATH": str(REPO)})
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def ec2(aws_env):
    import boto3

    return boto3.client("ec2", region_name=REGION)


def network(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    return vpc, subnet


def security_group(ec2, vpc, name, self_41=False):
    group = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    if self_41:
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "41", "FromPort": -1, "ToPort": -1, "UserIdGroupPairs": [{"GroupId": group}]}])
    return group


def launch(ec2, subnet, groups, address):
    image = ec2.describe_images()["Images"][0]["ImageId"]
    return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet, SecurityGroupIds=groups,
                             PrivateIpAddress=address)["Instances"][0]["InstanceId"]


def inventory(tmp_path, hosts):
    """hosts: name -> (address, instance id or None[, region])."""
    directory = tmp_path / "inventory"
    directory.mkdir()
    lines = []
    for name, (address, instance_id, *region) in hosts.items():
        lines += [f"{name}:", f"  hostname: {address}", "  data:", f"    ipv4: {address}"]
        if instance_id is not None:
            lines += ["    ec2:", f"      instance_id: {instance_id}",
                      f"      region: {(region or [REGION])[0]}"]
    (directory / "hosts.yaml").write_text("\n".join(lines) + "\n")
    (directory / "defaults.yaml").write_text("data:\n  isatap_prefix: 'fd00:5efe:1ab::/64'\n")
    return directory


def rules_41(ec2, group):
    """A group's inbound protocol 41 rules, as (source group or CIDR) sorted."""
    permissions = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    rules = [r for r in permissions if r["IpProtocol"] == "41"]
    return sorted([p["GroupId"] for r in rules for p in r["UserIdGroupPairs"]]
                  + [c["CidrIp"] for r in rules for c in r["IpRanges"]])


def test_ssh_only_groups_are_found_fixed_once_and_a_second_fix_does_nothing(aws_env, ec2, tmp_path):
    vpc, subnet = network(ec2)
    sg_a, sg_b = security_group(ec2, vpc, "a"), security_group(ec2, vpc, "b")
    a, b = launch(ec2, subnet, [sg_a], "10.9.1.10"), launch(ec2, subnet, [sg_b], "10.9.1.11")
    directory = inventory(tmp_path, {"a": ("10.9.1.10", a), "b": ("10.9.1.11", b)})

    code, out, err = fleet(aws_env, "aws", "check", "-i", directory)
    assert code == 1, err
    assert out.startswith("protocol 41 NOT OK: 2 instances, 2 directed pairs judged, 2 blocked, 0 not judged")
    # each group holds one instance of the fleet: the peer's address, not its whole group
    assert f"security group {sg_b} ({REGION}) lacks inbound protocol 41 from 10.9.1.10/32: a -> b" in out
    assert (f"aws ec2 authorize-security-group-ingress --region {REGION} --group-id {sg_b} "
            "--ip-permissions 'IpProtocol=41,IpRanges=[{CidrIp=10.9.1.10/32}]'") in out
    assert "network ACL" not in out  # moto's default ACL allows everything

    code, out, err = fleet(aws_env, "aws", "check", "-i", directory, "--json")
    document = json.loads(out)
    assert code == 1 and document["ok"] is False
    fixes = document["security_group_fixes"]
    assert sorted((f["group_id"], f["source_cidr"], f["widens"]) for f in fixes) == sorted(
        [(sg_b, "10.9.1.10/32", False), (sg_a, "10.9.1.11/32", False)])

    code, out, err = fleet(aws_env, "aws", "check", "-i", directory, "--fix")
    assert code == 0, out + err
    assert f"added inbound protocol 41 from 10.9.1.10/32 on {sg_b} ({REGION})" in out
    assert "protocol 41 OK: 2 instances, 2 directed pairs judged, 0 blocked, 0 not judged" in out
    assert (rules_41(ec2, sg_a), rules_41(ec2, sg_b)) == (["10.9.1.11/32"], ["10.9.1.10/32"])

    code, out, err = fleet(aws_env, "aws", "check", "-i", directory, "--fix")
    assert code == 0, err
    assert out.startswith("nothing to add: no judged pair is blocked by its security groups")
    code, out, _ = fleet(aws_env, "aws", "check", "-i", directory)
    assert code == 0 and out.startswith("protocol 41 OK")


def test_a_group_allowing_41_from_itself_passes_and_an_acl_deny_before_allow_is_found(aws_env, ec2, tmp_path):
    vpc, subnet = network(ec2)
    mesh = security_group(ec2, vpc, "mesh", self_41=True)
    a, b = launch(ec2, subnet, [mesh], "10.9.1.10"), launch(ec2, subnet, [mesh], "10.9.1.11")
    directory = inventory(tmp_path, {"a": ("10.9.1.10", a), "b": ("10.9.1.11", b)})
    code, out, err = fleet(aws_env, "aws", "check", "-i", directory)
    assert code == 0, out + err
    assert out.startswith("protocol 41 OK: 2 instances, 2 directed pairs judged, 0 blocked, 0 not judged")

    acl = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}]
                                    )["NetworkAcls"][0]["NetworkAclId"]
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=50, Protocol="41", RuleAction="deny",
                                 Egress=False, CidrBlock="10.9.1.10/32")
    code, out, err = fleet(aws_env, "aws", "check", "-i", directory, "--json")
    document = json.loads(out)
    assert code == 1, err
    assert [(p["src"], p["acl_inbound"]) for p in document["pairs"]] == [("a", False), ("b", True)]
    (fix,) = document["network_acl_fixes"]
    assert (fix["acl_id"], fix["direction"], fix["cidr"], fix["rule_number"]) == (
        acl, "ingress", "10.9.1.10/32", 49)
    code, out, _ = fleet(aws_env, "aws", "check", "-i", directory, "--fix")
    assert code == 1  # ACL entries are only printed, never applied
    assert "nothing to add" in out and f"--network-acl-id {acl} --ingress --rule-number 49" in out


def test_a_host_without_an_instance_id_and_an_unknown_instance_are_errors(aws_env, ec2, tmp_path):
    vpc, subnet = network(ec2)
    a = launch(ec2, subnet, [security_group(ec2, vpc, "a")], "10.9.1.10")
    directory = inventory(tmp_path, {"a": ("10.9.1.10", a), "b": ("10.9.1.11", None)})
    code, out, err = fleet(aws_env, "aws", "check", "-i", directory)
    assert code == 2 and out == ""
    assert "host b: data.ec2.instance_id is missing" in err and "hosts.yaml" in err

    code, out, err = fleet(aws_env, "aws", "check", "-i", directory, "-l", "a")
    assert code == 1, err  # --limit leaves b out: one instance, no pair judged, nothing verified
    assert "no pair was judged (1 instance(s)): nothing is verified" in out

    other = tmp_path / "other"
    other.mkdir()
    missing = inventory(other, {"a": ("10.9.1.10", a), "b": ("10.9.1.11", "i-0123456789abcdef0")})
    code, out, err = fleet(aws_env, "aws", "check", "-i", missing)
    assert code == 1 and err == ""
    assert ("not judged: b: instance i-0123456789abcdef0 not found in eu-west-1 (a wrong id, terminated, "
            "or in an account these credentials do not see): a -> b, b -> a") in out


def test_the_preflight_warnings_name_the_missing_rule_and_never_raise(aws_env, ec2, tmp_path):
    from fleet.api import select
    from fleet.aws.check import protocol41_warnings

    vpc, subnet = network(ec2)
    sg_a, sg_b = security_group(ec2, vpc, "a"), security_group(ec2, vpc, "b")
    a, b = launch(ec2, subnet, [sg_a], "10.9.1.10"), launch(ec2, subnet, [sg_b], "10.9.1.11")
    hosts = {"a": ("10.9.1.10", a), "b": ("10.9.1.11", b)}
    warnings = protocol41_warnings(select(inventory(tmp_path, hosts)))
    assert sorted(warnings) == sorted(
        [f"protocol 41: security group {sg_b} lacks inbound 41 from 10.9.1.10/32 (1 pair(s)); "
         "`fleet aws check --fix` adds it",
         f"protocol 41: security group {sg_a} lacks inbound 41 from 10.9.1.11/32 (1 pair(s)); "
         "`fleet aws check --fix` adds it"])
    plain = tmp_path / "plain"
    plain.mkdir()
    assert protocol41_warnings(select(inventory(plain, {"a": ("10.9.1.10", None)}))) == []
    gone = tmp_path / "gone"
    gone.mkdir()
    warnings = protocol41_warnings(select(inventory(gone, {"a": ("10.9.1.10", "i-0123456789abcdef0")})))
    assert warnings == ["protocol 41: no pair was judged (1 instance(s)): nothing is verified"]
    broken = tmp_path / "broken"
    broken.mkdir()
    (warning,) = protocol41_warnings(select(inventory(broken, {"a": ("10.9.1.10", "i-0123")})),
                                     clients=lambda region: None)
    assert warning.startswith("protocol 41 check could not run:")


def test_setup_on_an_inventory_from_ec2_warns_first_about_protocol_41(aws_env, ec2, tmp_path):
    import socket

    vpc, subnet = network(ec2)
    sg_a, sg_b = security_group(ec2, vpc, "a"), security_group(ec2, vpc, "b")
    a, b = launch(ec2, subnet, [sg_a], "10.9.1.10"), launch(ec2, subnet, [sg_b], "10.9.1.11")
    ports = []
    for _ in range(2):  # closed ports on loopback: the hosts themselves cannot be reached
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    directory = tmp_path / "inventory"
    directory.mkdir()
    (directory / "hosts.yaml").write_text("".join(
        f"{name}:\n  hostname: 127.0.0.1\n  port: {port}\n  data:\n    ipv4: {address}\n"
        f"    ec2: {{instance_id: {instance}, region: {REGION}}}\n"
        for name, port, address, instance in [("a", ports[0], "10.9.1.10", a),
                                              ("b", ports[1], "10.9.1.11", b)]))
    (directory / "defaults.yaml").write_text("data:\n  isatap_prefix: 'fd00:5efe:1ab::/64'\n")
    code, out, err = fleet(aws_env, "run", "setup", "-i", directory, "--connect-timeout", "3",
                           "--no-host-key-checking", "--no-progress")
    assert code == 1  # the hosts are unreachable; the warning came first, and the run went on
    assert f"warning: protocol 41: security group {sg_b} lacks inbound 41 from 10.9.1.10/32" in err
    assert "unreachable" in out  # and the hosts' own failures follow
    code, _, err = fleet(aws_env, "run", "mesh", "-i", directory, "--connect-timeout", "3",
                         "--no-host-key-checking", "--no-progress")
    assert "protocol 41" not in err  # the mesh reports what it measures; the warning is setup's


# --- pairs it cannot judge: listed with the reason, and never OK ---------------------------------

def verdicts(code, out_text, out_json):
    """The verdict as every output gives it: exit code, the text's head, the JSON's ok."""
    return code, out_text.startswith("protocol 41 OK"), json.loads(out_json)["ok"]


def both(env, directory, *extra):
    code, text, err = fleet(env, "aws", "check", "-i", directory, *extra)
    code_json, document, _ = fleet(env, "aws", "check", "-i", directory, "--json", *extra)
    assert code == code_json, err
    return code, text, json.loads(document)


def test_instances_in_two_regions_are_not_judged_and_the_check_fails(aws_env, ec2, tmp_path):
    import boto3

    vpc, subnet = network(ec2)
    a = launch(ec2, subnet, [security_group(ec2, vpc, "mesh", self_41=True)], "10.9.1.10")
    east = boto3.client("ec2", region_name="us-east-1")
    vpc_e, subnet_e = network(east)
    b = launch(east, subnet_e, [security_group(east, vpc_e, "mesh", self_41=True)], "10.9.1.11")
    directory = inventory(tmp_path, {"a": ("10.9.1.10", a), "b": ("10.9.1.11", b, "us-east-1")})

    code, text, document = both(aws_env, directory)
    assert code == 1 and document["ok"] is False
    assert text.startswith(
        "protocol 41 NOT OK: 2 instances, 0 directed pairs judged, 0 blocked, 2 not judged")
    assert ("not judged: a is in eu-west-1, b in us-east-1: pairs across regions are not judged: "
            "a -> b, b -> a") in text
    assert "no pair was judged (2 instance(s)): nothing is verified" in text
    assert [(u["src"], u["dst"]) for u in document["unjudged"]] == [("a", "b"), ("b", "a")]
    assert document["judged_pairs"] == 0


def test_a_stopped_instance_fails_the_check_though_every_judged_pair_is_allowed(aws_env, ec2, tmp_path):
    vpc, subnet = network(ec2)
    mesh = security_group(ec2, vpc, "mesh", self_41=True)
    ids = [launch(ec2, subnet, [mesh], f"10.9.1.{n}") for n in (10, 11, 12)]
    ec2.stop_instances(InstanceIds=[ids[2]])
    directory = inventory(tmp_path, {name: (f"10.9.1.{n}", i)
                                     for name, n, i in zip("abc", (10, 11, 12), ids)})

    code, text, document = both(aws_env, directory)
    assert code == 1
    assert text.startswith(
        "protocol 41 NOT OK: 3 instances, 2 directed pairs judged, 0 blocked, 4 not judged")
    assert f"not judged: c: instance {ids[2]} is stopped, not running: a -> c, b -> c, c -> a, c -> b" in text
    assert all(p["ok"] for p in document["pairs"]) and document["ok"] is False
    code, out, _ = fleet(aws_env, "aws", "check", "-i", directory, "--fix")
    assert code == 1 and "nothing to add" in out  # nothing to fix does not make it green


def test_data_ipv4_is_judged_not_ec2s_address_and_a_foreign_address_is_not_judged(aws_env, ec2, tmp_path):
    vpc, subnet = network(ec2)
    group = security_group(ec2, vpc, "mesh")
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[  # EC2's addresses, exactly
        {"IpProtocol": "41", "FromPort": -1, "ToPort": -1,
         "IpRanges": [{"CidrIp": "10.9.1.10/32"}, {"CidrIp": "10.9.1.11/32"}]}])
    a, b = launch(ec2, subnet, [group], "10.9.1.10"), launch(ec2, subnet, [group], "10.9.1.11")
    directory = inventory(tmp_path, {"a": ("10.9.1.10", a), "b": ("10.9.1.11", b)})
    assert both(aws_env, directory)[0] == 0

    other = tmp_path / "hand-written"
    other.mkdir()  # a tunnel address the instance does not have: what EC2 allows says nothing of it
    directory = inventory(other, {"a": ("10.9.1.10", a), "b": ("10.9.1.99", b)})
    code, text, document = both(aws_env, directory)
    assert code == 1 and document["ok"] is False
    assert (f"not judged: b: data.ipv4 10.9.1.99 is not a private address of {b} (it has 10.9.1.11): "
            "a -> b, b -> a") in text
    assert [i["ipv4"] for i in document["instances"]] == ["10.9.1.10", "10.9.1.99"]
    assert [i["private_ips"] for i in document["instances"]] == [["10.9.1.10"], ["10.9.1.11"]]


# --- --fix: the narrowest rule, on what the fleet alone owns ------------------------------------

def web_bed(ec2, with_isatap_group=True):
    """Three fleet instances in sg-web (and sg-isatap), and 20 other web servers in sg-web."""
    vpc, subnet = network(ec2)
    web = security_group(ec2, vpc, "web")
    isatap = security_group(ec2, vpc, "isatap") if with_isatap_group else None
    groups = [web, isatap] if isatap else [web]
    fleet_ids = [launch(ec2, subnet, groups, f"10.9.1.{10 + n}") for n in range(3)]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    others = [i["InstanceId"] for i in ec2.run_instances(
        ImageId=image, MinCount=20, MaxCount=20, SubnetId=subnet, SecurityGroupIds=[web])["Instances"]]
    return web, isatap, fleet_ids, others


def test_fix_adds_one_self_rule_on_the_group_only_the_fleet_is_in_and_leaves_the_shared_one(
        aws_env, ec2, tmp_path):
    web, isatap, ids, _ = web_bed(ec2)
    directory = inventory(tmp_path, {n: (f"10.9.1.{10 + k}", i) for k, (n, i) in enumerate(zip("abc", ids))})
    code, out, err = fleet(aws_env, "aws", "check", "-i", directory, "--fix")
    assert code == 0, out + err
    assert out.splitlines()[0] == f"added inbound protocol 41 from {isatap} on {isatap} ({REGION})"
    assert "protocol 41 OK: 3 instances, 6 directed pairs judged, 0 blocked, 0 not judged" in out
    assert rules_41(ec2, isatap) == [isatap]
    assert rules_41(ec2, web) == []  # the 20 web servers gained nothing


def test_fix_on_a_group_with_others_in_it_names_them_and_needs_yes(aws_env, ec2, tmp_path):
    web, _, ids, others = web_bed(ec2, with_isatap_group=False)
    directory = inventory(tmp_path, {n: (f"10.9.1.{10 + k}", i) for k, (n, i) in enumerate(zip("abc", ids))})

    code, out, err = fleet(aws_env, "aws", "check", "-i", directory, "--fix")
    assert code == 1, err
    assert f"would add inbound protocol 41 from 10.9.1.10/32 on {web} ({REGION}); {web} also holds " \
           "20 member(s) outside the inventory: " in out
    assert sorted(others)[0] in out and "and 10 more" in out
    assert "nothing changed: 3 rule(s) would widen a group that holds members outside the inventory" in out
    assert rules_41(ec2, web) == []
    code, out, _ = fleet(aws_env, "aws", "check", "-i", directory, "--fix", "--json")
    document = json.loads(out)
    assert code == 1 and document["ok"] is False and document["fix"]["applied"] == []
    assert sorted(document["fix"]["refused"][0]["outsiders"]) == sorted(others)

    code, out, err = fleet(aws_env, "aws", "check", "-i", directory, "--fix", "--yes")
    assert code == 0, out + err
    assert f"added inbound protocol 41 from 10.9.1.10/32 on {web} ({REGION}); {web} also holds 20" in out
    assert rules_41(ec2, web) == ["10.9.1.10/32", "10.9.1.11/32", "10.9.1.12/32"]

    code, _, err = fleet(aws_env, "aws", "check", "-i", directory, "--yes")
    assert code == 2 and "--yes only goes with --fix" in err


@pytest.fixture
def error_endpoint(aws_env, monkeypatch):
    from awserrors import error_endpoints

    yield from error_endpoints(aws_env, monkeypatch)


@pytest.mark.parametrize("failure", ["rule-limit", "not-xml"])
def test_a_fix_that_fails_halfway_lists_what_it_added_and_names_the_group(aws_env, ec2, tmp_path,
                                                                          error_endpoint, failure):
    from awserrors import Answer

    vpc, subnet = network(ec2)
    sg_a, sg_b = security_group(ec2, vpc, "a"), security_group(ec2, vpc, "b")
    a, b = launch(ec2, subnet, [sg_a], "10.9.1.10"), launch(ec2, subnet, [sg_b], "10.9.1.11")
    directory = inventory(tmp_path, {"a": ("10.9.1.10", a), "b": ("10.9.1.11", b)})
    if failure == "rule-limit":  # moto's own limit: sg_a is full
        with pytest.raises(Exception, match="RulesPerSecurityGroupLimitExceeded"):  # noqa: B017
            for n in range(100):
                ec2.authorize_security_group_ingress(GroupId=sg_a, IpPermissions=[
                    {"IpProtocol": "tcp", "FromPort": 1000 + n, "ToPort": 1000 + n,
                     "IpRanges": [{"CidrIp": f"192.0.2.{n}/32"}]}])
    else:  # the endpoint answers this one call with a page that is not EC2's
        error_endpoint(Answer.not_xml(), when={"Action": "AuthorizeSecurityGroupIngress", "GroupId": sg_a})

    code, out, err = fleet(aws_env, "aws", "check", "-i", directory, "--fix")
    assert code == 1, out + err
    lines = out.splitlines()
    assert lines[0] == f"added inbound protocol 41 from 10.9.1.10/32 on {sg_b} ({REGION})"
    assert lines[1].startswith(f"FAILED to add inbound protocol 41 from 10.9.1.11/32 on {sg_a} ({REGION}): ")
    expected = "RulesPerSecurityGroupLimitExceeded" if failure == "rule-limit" else "not an EC2 response"
    assert expected in lines[1]
    assert lines[2] == f"stopped at {sg_a}: 1 rule(s) added before it stay in place (listed above)"
    assert "nothing" not in out and "Traceback" not in err
    assert "protocol 41 NOT OK: 2 instances, 2 directed pairs judged, 1 blocked" in out  # read again
    assert (rules_41(ec2, sg_b), rules_41(ec2, sg_a)) == (["10.9.1.10/32"], [])

    code, out, _ = fleet(aws_env, "aws", "check", "-i", directory, "--fix", "--json")
    fix = json.loads(out)["fix"]
    assert code == 1 and json.loads(out)["ok"] is False
    assert fix["applied"] == [] and fix["failed"]["group_id"] == sg_a  # sg_b's rule is in place now


# --- AWS failures: exit 2, one line naming the inventory and the region --------------------------

@pytest.mark.parametrize(("answer", "words"), [
    (("not-xml",), "DescribeInstances in eu-west-1: the endpoint's answer is not an EC2 response"),
    ((403, "UnauthorizedOperation"), "DescribeInstances in eu-west-1: UnauthorizedOperation"),
    ((503, "RequestLimitExceeded"), "DescribeInstances in eu-west-1: RequestLimitExceeded"),
])
def test_aws_failures_are_one_line_naming_the_inventory_and_region(aws_env, ec2, tmp_path, error_endpoint,
                                                                   answer, words):
    from awserrors import Answer

    vpc, subnet = network(ec2)
    a = launch(ec2, subnet, [security_group(ec2, vpc, "a")], "10.9.1.10")
    b = launch(ec2, subnet, [security_group(ec2, vpc, "b")], "10.9.1.11")
    directory = inventory(tmp_path, {"a": ("10.9.1.10", a), "b": ("10.9.1.11", b)})
    error_endpoint(Answer.not_xml() if answer == ("not-xml",) else Answer.error(*answer),
                   when={"Action": "DescribeInstances"})
    for extra in ((), ("--json",), ("--fix",)):
        code, out, err = fleet(aws_env, "aws", "check", "-i", directory, *extra)
        assert code == 2 and out == ""
        (line,) = err.strip().splitlines()
        assert line.startswith(f"fleet aws: error: {directory}: AWS ") and words in line


def test_membership_is_read_only_when_a_pair_is_blocked(aws_env, ec2, tmp_path, error_endpoint):
    from awserrors import Answer

    vpc, subnet = network(ec2)
    mesh = security_group(ec2, vpc, "mesh", self_41=True)
    a, b = launch(ec2, subnet, [mesh], "10.9.1.10"), launch(ec2, subnet, [mesh], "10.9.1.11")
    directory = inventory(tmp_path, {"a": ("10.9.1.10", a), "b": ("10.9.1.11", b)})
    seen = error_endpoint(Answer.error(403, "UnauthorizedOperation"),
                          when={"Action": "DescribeNetworkInterfaces"})
    code, out, err = fleet(aws_env, "aws", "check", "-i", directory)
    assert code == 0, out + err
    assert "DescribeNetworkInterfaces" not in {p.get("Action") for p in seen}
