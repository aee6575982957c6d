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

REPO = Path(__file__).resolve().parent.parent


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
    """hosts: name -> (address, instance id or None)."""
    directory = tmp_path / "inventory"
    directory.mkdir()
    lines = []
    for name, (address, instance_id) in hosts.items():
        lines += [f"{name}:", f"  hostname: {address}", "  data:", f"    ipv4: {address}"]
        if instance_id is not None:
            lines += ["    ec2:", f"      instance_id: {instance_id}", f"      region: {REGION}"]
    (directory / "hosts.yaml").write_text("\n".join(lines) + "\n")
    (directory / "defaults.yaml").write_text("data:\n  isatap_prefix: 'fd00:5efe:1ab::/64'\n")
    return directory


def test_ssh_only_groups_are_found_fixed_once_and_a_second_fix_does_nothing(aws_env, ec2, tmp_path):
    vpc, subnet = network(ec2)
    sg_a, sg_b = security_group(ec2, vpc, "a"), security_group(ec2, vpc, "b")
    a, b = launch(ec2, subnet, [sg_a], "10.9.1.10"), launch(ec2, subnet, [sg_b], "10.9.1.11")
    directory = inventory(tmp_path, {"a": ("10.9.1.10", a), "b": ("10.9.1.11", b)})

    code, out, err = fleet(aws_env, "aws", "check", "-i", directory)
    assert code == 1, err
    assert out.startswith("protocol 41 NOT OK: 2 instances, 2 directed pairs, 2 blocked")
    assert f"security group {sg_b} ({REGION}) lacks inbound protocol 41 from {sg_a}: a -> b" in out
    assert (f"aws ec2 authorize-security-group-ingress --region {REGION} --group-id {sg_b} "
            f"--ip-permissions 'IpProtocol=41,UserIdGroupPairs=[{{GroupId={sg_a}}}]'") in out
    assert "network ACL" not in out  # moto's default ACL allows everything

    code, out, err = fleet(aws_env, "aws", "check", "-i", directory, "--json")
    document = json.loads(out)
    assert code == 1 and document["ok"] is False
    assert sorted((f["group_id"], f["source_group"]) for f in document["security_group_fixes"]) == sorted(
        [(sg_b, sg_a), (sg_a, sg_b)])

    code, out, err = fleet(aws_env, "aws", "check", "-i", directory, "--fix")
    assert code == 0, out + err
    assert f"added inbound protocol 41 from {sg_a} on {sg_b} ({REGION})" in out
    assert "protocol 41 OK: 2 instances, 2 directed pairs, 0 blocked" in out
    rules = ec2.describe_security_groups(GroupIds=[sg_b])["SecurityGroups"][0]["IpPermissions"]
    assert {"IpProtocol": "41", "UserIdGroupPairs": [sg_a]} in [
        {"IpProtocol": r["IpProtocol"], "UserIdGroupPairs": [p["GroupId"] for p in r["UserIdGroupPairs"]]}
        for r in rules]

    code, out, err = fleet(aws_env, "aws", "check", "-i", directory, "--fix")
    assert code == 0, err
    assert out.startswith("nothing to fix: every security group already allows protocol 41")
    code, out, _ = fleet(aws_env, "aws", "check", "-i", directory)
    assert code == 0 and out.startswith("protocol 41 OK")


def test_a_group_allowing_41_from_itself_passes_and_an_acl_deny_before_allow_is_found(aws_env, ec2, tmp_path):
    vpc, subnet = network(ec2)
    mesh = security_group(ec2, vpc, "mesh", self_41=True)
    a, b = launch(ec2, subnet, [mesh], "10.9.1.10"), launch(ec2, subnet, [mesh], "10.9.1.11")
    directory = inventory(tmp_path, {"a": ("10.9.1.10", a), "b": ("10.9.1.11", b)})
    code, out, err = fleet(aws_env, "aws", "check", "-i", directory)
    assert code == 0, out + err
    assert out.startswith("protocol 41 OK: 2 instances, 2 directed pairs, 0 blocked")

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
    assert "nothing to fix" in out and f"--network-acl-id {acl} --ingress --rule-number 49" in out


def test_a_host_without_an_instance_id_and_an_unknown_instance_are_errors(aws_env, ec2, tmp_path):
    vpc, subnet = network(ec2)
    a = launch(ec2, subnet, [security_group(ec2, vpc, "a")], "10.9.1.10")
    directory = inventory(tmp_path, {"a": ("10.9.1.10", a), "b": ("10.9.1.11", None)})
    code, out, err = fleet(aws_env, "aws", "check", "-i", directory)
    assert code == 2 and out == ""
    assert "host b: data.ec2.instance_id is missing" in err and "hosts.yaml" in err

    code, out, err = fleet(aws_env, "aws", "check", "-i", directory, "-l", "a")
    assert code == 0, err  # --limit leaves b out: one instance, no pair to block

    other = tmp_path / "other"
    other.mkdir()
    missing = inventory(other, {"a": ("10.9.1.10", "i-0123456789abcdef0")})
    code, out, err = fleet(aws_env, "aws", "check", "-i", missing)
    assert code == 2 and "fleet aws: error: AWS DescribeInstances in eu-west-1" in err


def test_the_preflight_warnings_name_the_missing_rule_and_never_raise(aws_env, ec2, tmp_path):
    from fleet.api import select
    from fleet.aws.check import protocol41_warnings

    vpc, subnet = network(ec2)
    sg_a, sg_b = security_group(ec2, vpc, "a"), security_group(ec2, vpc, "b")
    a, b = launch(ec2, subnet, [sg_a], "10.9.1.10"), launch(ec2, subnet, [sg_b], "10.9.1.11")
    hosts = {"a": ("10.9.1.10", a), "b": ("10.9.1.11", b)}
    warnings = protocol41_warnings(select(inventory(tmp_path, hosts)))
    assert sorted(warnings) == sorted(
        [f"protocol 41: security group {sg_b} lacks inbound 41 from {sg_a} (1 pair(s)); "
         "`fleet aws check --fix` adds it",
         f"protocol 41: security group {sg_a} lacks inbound 41 from {sg_b} (1 pair(s)); "
         "`fleet aws check --fix` adds it"])
    plain = tmp_path / "plain"
    plain.mkdir()
    assert protocol41_warnings(select(inventory(plain, {"a": ("10.9.1.10", None)}))) == []
    gone = tmp_path / "gone"
    gone.mkdir()
    (warning,) = protocol41_warnings(select(inventory(gone, {"a": ("10.9.1.10", "i-0123456789abcdef0")})))
    assert warning.startswith("protocol 41 check could not run: AWS DescribeInstances")


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
    assert f"warning: protocol 41: security group {sg_b} lacks inbound 41 from {sg_a}" in err
    assert "unreachable" in out  # and the hosts' own failures follow
    code, _, err = fleet(aws_env, "run", "mesh", "-i", directory, "--connect-timeout", "3",
                         "--no-host-key-checking", "--no-progress")
    assert "protocol 41" not in err  # the mesh reports what it measures; the warning is setup's
