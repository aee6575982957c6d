"""`fleet aws check` on an EC2 source file calls AWS as the inventory did: with the file's
`iam_role_arn` (sts:AssumeRole) and its `profile`. On moto (tests/motoserver.py) a role's
credentials act in the role's account, whose resources the caller's own credentials do not see:
the check finds the instances only if it logged in as the inventory did."""

from __future__ import annotations

import json

import pytest
from test_aws_check import fleet, rules_41, security_group
from test_ec2_inventory import BASIC, source
from test_ec2_inventory_options import OTHER_ACCOUNT, ROLE, other_account_ec2

from tests.motoserver import REGION


def fleet_in_the_roles_account(client, name="far"):
    """Two instances in the role's account, in one VPC; their groups allow SSH only."""
    vpc = client.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = client.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    groups = [security_group(client, vpc, f"{name}-{i}") for i in range(2)]
    image = client.describe_images()["Images"][0]["ImageId"]
    for i, group in enumerate(groups):
        client.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet, SecurityGroupIds=[group],
                             PrivateIpAddress=f"10.9.1.{10 + i}",
                             TagSpecifications=[{"ResourceType": "instance",
                                                 "Tags": [{"Key": "Name", "Value": f"{name}-{i}"}]}])
    return groups


def test_the_check_assumes_the_inventorys_role_for_the_check_and_the_fix(aws_env, tmp_path):
    client = other_account_ec2()
    groups = fleet_in_the_roles_account(client)
    path = source(tmp_path, BASIC + f"regions: [{REGION}]\niam_role_arn: {ROLE}\n")

    code, out, err = fleet(aws_env, "aws", "check", "-i", path, "--json")
    document = json.loads(out)
    assert code == 1, err
    # found and judged in the role's account: blocked (SSH only), not "instance not found"
    counts = (len(document["instances"]), document["blocked_pairs"], document["unjudged_pairs"])
    assert counts == (2, 2, 0), out
    code, out, err = fleet(aws_env, "aws", "check", "-i", path, "--fix")
    assert code == 0, out + err
    assert "protocol 41 OK: 2 instances, 2 directed pairs judged" in out
    assert [rules_41(client, g) for g in groups] == [["10.9.1.11/32"], ["10.9.1.10/32"]]  # in its account


def test_a_role_the_check_cannot_assume_is_an_aws_error_naming_it(aws_env, tmp_path, monkeypatch):
    from awserrors import Answer, error_endpoints

    from fleet.aws.check import AwsError, run_check
    from fleet.inventory import load_inventory

    fleet_in_the_roles_account(other_account_ec2())
    inventory = load_inventory(source(tmp_path, BASIC + f"regions: [{REGION}]\niam_role_arn: {ROLE}\n"))
    starts = error_endpoints(aws_env, monkeypatch)
    try:  # after the inventory was read: the role is refused to the check
        seen = next(starts)(Answer.error(403, "AccessDenied"), when={"Action": "AssumeRole"})
        with pytest.raises(AwsError) as raised:
            run_check(inventory)
    finally:
        next(starts, None)
    assert str(raised.value).startswith(f"sts:AssumeRole (the inventory's role {ROLE}): ")
    assert "AccessDenied" in str(raised.value) and "\n" not in str(raised.value)
    assert [s["Action"] for s in seen] == ["AssumeRole"] and seen[0]["RoleArn"] == ROLE


def test_the_check_uses_the_inventorys_profile(aws_env, tmp_path):
    """The profile `bed` (in a temporary AWS_CONFIG_FILE) assumes the role from the profile
    `base`'s keys: only through it does the check see the role's account."""
    client = other_account_ec2()
    fleet_in_the_roles_account(client, "bed")
    (tmp_path / "aws-config").write_text(
        f"[profile bed]\nrole_arn = {ROLE}\nsource_profile = base\nregion = {REGION}\n"
        f"[profile base]\nregion = {REGION}\n")
    (tmp_path / "aws-credentials").write_text(
        "[base]\naws_access_key_id = base-key\naws_secret_access_key = base-secret\n")
    with_profile = source(tmp_path, BASIC + "profile: bed\n", "with-profile.yaml")

    code, out, err = fleet(aws_env, "aws", "check", "-i", with_profile, "--json")
    document = json.loads(out)
    assert code == 1, err
    counts = (len(document["instances"]), document["blocked_pairs"], document["unjudged_pairs"])
    assert counts == (2, 2, 0), out

    # the same instances named by a directory inventory: the default credentials' account has none
    ids = {i["Tags"][0]["Value"]: i["InstanceId"]
           for r in client.describe_instances()["Reservations"] for i in r["Instances"]}
    directory = tmp_path / "plain"
    directory.mkdir()
    (directory / "hosts.yaml").write_text("".join(
        f"{name}:\n  hostname: 10.9.1.{10 + i}\n  data:\n    ipv4: 10.9.1.{10 + i}\n"
        f"    ec2: {{instance_id: {ids[name]}, region: {REGION}}}\n"
        for i, name in enumerate(sorted(ids))))
    (directory / "defaults.yaml").write_text("data:\n  isatap_prefix: 'fd00:5efe:1ab::/64'\n")
    code, out, err = fleet(aws_env, "aws", "check", "-i", directory, "--json")
    document = json.loads(out)
    assert code == 1 and document["unjudged_pairs"] == 2, out + err
    assert [i["state"] for i in document["instances"]] == ["not-found", "not-found"]
    assert OTHER_ACCOUNT not in out
