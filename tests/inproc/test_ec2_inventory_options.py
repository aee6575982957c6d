"""The EC2 source's options shared with Ansible's aws_ec2 plugin (hostnames fallbacks,
keyed_groups, include/exclude filters, iam_role_arn), and files written for Ansible itself, on
moto in server mode (real boto3, real HTTP on 127.0.0.1)."""

from __future__ import annotations

import pytest
from test_ec2_inventory import BASIC, PREFIX, ec2, launch, make_vpc, run_fleet, source

from fleet.core.errors import InventoryError
from fleet.inventory import load_inventory
from tests.motoserver import REGION

OTHER_ACCOUNT = "111111111111"
ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/isatap-bed-reader"


def described(client) -> dict[str, dict]:
    return {i["InstanceId"]: i for r in client.describe_instances()["Reservations"] for i in r["Instances"]}


def hosts_of(path) -> dict:
    return {h.name: h for h in load_inventory(path).hosts}


# --- hostnames and name_from: ordered, the first with a value wins ---------------------------

def test_hostnames_fall_back_in_order_and_keep_data_ipv4_private(aws_env, tmp_path):
    client = ec2()
    _, (subnet,) = make_vpc(client)  # a VPC of its own: no public address
    plain = launch(client, subnet, {"Name": "plain"})[0]
    named = launch(client, subnet, {"Name": "named", "SshAddress": "named.bed.example"})[0]
    raw = described(client)
    assert not raw[plain].get("PublicIpAddress")
    path = source(tmp_path, BASIC + "hostnames: ['tag:SshAddress', ip-address, private-dns-name]\n")
    hosts = hosts_of(path)
    assert hosts["named"].ssh_host == "named.bed.example"
    assert hosts["plain"].ssh_host == raw[plain]["PrivateDnsName"]  # no tag, no public IP
    assert {str(h.ipv4) for h in hosts.values()} == {raw[i]["PrivateIpAddress"] for i in (plain, named)}

    fleet_spelling = source(tmp_path, BASIC + "hostnames: [public-ip, private-ip]\n", "old.yaml")
    assert hosts_of(fleet_spelling)["plain"].ssh_host == raw[plain]["PrivateIpAddress"]


def test_a_host_with_none_of_the_hostnames_is_named(aws_env, tmp_path):
    client = ec2()
    _, (subnet,) = make_vpc(client)
    instance = launch(client, subnet, {"Name": "lonely"})[0]
    path = source(tmp_path, BASIC + "hostnames: [ip-address, dns-name]\n")
    words = f"instance {instance} has none of ip-address, dns-name"
    with pytest.raises(InventoryError, match=words) as raised:
        load_inventory(path)
    assert (raised.value.file, raised.value.host, raised.value.field) == (str(path), "lonely", "hostnames")


def test_name_from_falls_back_in_order_then_to_the_instance_id(aws_env, tmp_path):
    client = ec2()
    _, (subnet,) = make_vpc(client)
    tagged = launch(client, subnet, {"Host": "alpha", "Name": "ignored"})[0]
    untagged = launch(client, subnet)[0]
    path = source(tmp_path, BASIC + "name_from: ['tag:Host', private-dns-name]\n")
    raw = described(client)
    assert set(hosts_of(path)) == {"alpha", raw[untagged]["PrivateDnsName"]}
    by_tag_only = source(tmp_path, BASIC + "name_from: 'tag:Host'\n", "tag.yaml")
    assert set(hosts_of(by_tag_only)) == {"alpha", untagged}
    assert tagged


@pytest.mark.parametrize(("text", "field", "words"), [
    ("hostnames: [instance-id]\n", "hostnames", "a name, not an address"),
    ("name_from: [elastic-ip]\n", "name_from", "unknown value 'elastic-ip'"),
    ("keyed_groups: [{key: security_groups}]\n", "keyed_groups[0].key", "not supported"),
    ("keyed_groups: [{key: vpc_id, parent_group: vpcs}]\n", "keyed_groups[0].parent_group", "not supported"),
    ("include_filters: {'tag:Role': isatap}\n", "include_filters", "list of filter mappings"),
    ("exclude_filters: [[a]]\n", "exclude_filters[0]", "mapping"),
    ("iam_role_arn: reader\n", "iam_role_arn", "role's ARN"),
])
def test_bad_option_values_are_refused_before_asking_aws(tmp_path, monkeypatch, text, field, words):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # would fail if it were asked
    path = source(tmp_path, text)
    with pytest.raises(InventoryError, match=words) as raised:
        load_inventory(path)
    assert (raised.value.file, raised.value.field) == (str(path), field)


# --- keyed_groups -------------------------------------------------------------------------------

def test_keyed_groups_over_tags_zone_vpc_subnet_and_type(aws_env, tmp_path):
    client = ec2()
    vpc, (subnet,) = make_vpc(client)
    launch(client, subnet, {"Name": "one", "Role": "isatap", "Bed": "lab 7"})
    zone = client.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailabilityZone"]
    path = source(tmp_path, BASIC + """keyed_groups:
  - {key: tags.Role, prefix: role}
  - {key: "tags['Bed']", prefix: bed, separator: "-"}
  - {key: placement.availability_zone, prefix: az}
  - {key: vpc_id}
  - {key: subnet_id, prefix: subnet}
  - {key: instance_type, prefix: type}
  - {key: tags.Missing, prefix: never}
  - {key: tags, prefix: tag}
""")
    (host,) = load_inventory(path).hosts
    assert host.groups == ("role_isatap", "bed-lab-7", f"az_{zone}", f"_{vpc}", f"subnet_{subnet}",
                           "type_t3.micro", "tag_Name_one", "tag_Role_isatap", "tag_Bed_lab-7")

    without_leading = source(tmp_path, BASIC + "leading_separator: false\nkeyed_groups: [{key: vpc_id}]\n",
                             "lead.yaml")
    (host,) = load_inventory(without_leading).hosts
    assert host.groups == (vpc,)


def test_groups_from_and_keyed_groups_together(aws_env, tmp_path):
    client = ec2()
    vpc, (subnet,) = make_vpc(client)
    launch(client, subnet, {"Name": "one", "Role": "isatap"})
    path = source(tmp_path, BASIC + "groups_from: [vpc]\nkeyed_groups: [{key: tags.Role, prefix: tag_Role}, "
                                    "{key: vpc_id, prefix: vpc}]\n")
    (host,) = load_inventory(path).hosts
    assert host.groups == (f"vpc_{vpc}", "tag_Role_isatap")  # one group, however it was asked for


# --- include_filters / exclude_filters ----------------------------------------------------------

def test_include_filters_add_queries_and_exclude_filters_take_away(aws_env, tmp_path):
    client = ec2()
    _, (subnet,) = make_vpc(client)
    launch(client, subnet, {"Name": "node1", "Role": "isatap"})
    launch(client, subnet, {"Name": "node2", "Role": "isatap", "Keep": "no"})
    launch(client, subnet, {"Name": "router", "Role": "router"})
    launch(client, subnet, {"Name": "web", "Role": "web"})
    stopped = launch(client, subnet, {"Name": "old-router", "Role": "router"})[0]
    client.stop_instances(InstanceIds=[stopped])
    path = source(tmp_path, BASIC + """filters: {"tag:Role": isatap}
include_filters: [{"tag:Role": router}, {"tag:Name": node1}]
exclude_filters: [{"tag:Keep": "no"}]
""")
    assert sorted(hosts_of(path)) == ["node1", "router"]  # each once; stopped ones left out

    only_includes = source(tmp_path, BASIC + "include_filters: [{'tag:Role': web}, {'tag:Role': router,"
                                             " instance-state-name: [running, stopped]}]\n", "inc.yaml")
    assert sorted(hosts_of(only_includes)) == ["old-router", "router", "web"]


def test_everything_excluded_is_an_error_that_says_so(aws_env, tmp_path):
    client = ec2()
    _, (subnet,) = make_vpc(client)
    launch(client, subnet, {"Name": "node1", "Role": "isatap"})
    path = source(tmp_path, BASIC + "filters: {'tag:Role': isatap}\nexclude_filters: [{'tag:Name': node1}]\n")
    with pytest.raises(InventoryError, match=r"after exclude_filters \(tag:Name=node1\)") as raised:
        load_inventory(path)
    assert raised.value.field == "filters"


# --- iam_role_arn: STS AssumeRole, then EC2 with the role's credentials -------------------------

def other_account_ec2():
    """An EC2 client in OTHER_ACCOUNT: moto keeps each account's resources apart, and a role's
    temporary credentials act in the role's account."""
    import boto3

    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=ROLE, RoleSessionName="test-setup")["Credentials"]
    return boto3.client("ec2", region_name=REGION, aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"])


def test_iam_role_arn_reads_the_roles_account(aws_env, tmp_path):
    client = other_account_ec2()
    _, (subnet,) = make_vpc(client)
    launch(client, subnet, {"Name": "far", "Role": "isatap"})
    launch(ec2(), make_vpc(ec2())[1][0], {"Name": "near", "Role": "isatap"})  # the caller's account

    with_role = source(tmp_path, BASIC + f"iam_role_arn: {ROLE}\n")
    (host,) = load_inventory(with_role).hosts
    assert host.name == "far"
    (near,) = load_inventory(source(tmp_path, BASIC, "own.yaml")).hosts
    assert near.name == "near"


def test_a_role_that_cannot_be_assumed_is_an_inventory_error(aws_env, tmp_path, monkeypatch):
    from awserrors import Answer, error_endpoints

    starts = error_endpoints(aws_env, monkeypatch)
    start = next(starts)
    seen = start(Answer.error(403, "AccessDenied"), when={"Action": "AssumeRole"})
    path = source(tmp_path, BASIC + f"iam_role_arn: {ROLE}\n")
    with pytest.raises(InventoryError, match=f"cannot assume role {ROLE} .*AccessDenied.*sts:AssumeRole") \
            as raised:
        load_inventory(path)
    assert (raised.value.file, raised.value.field) == (str(path), "iam_role_arn")
    assert [s["Action"] for s in seen] == ["AssumeRole"] and seen[0]["RoleArn"] == ROLE
    next(starts, None)  # stops the server


# --- files written for Ansible ------------------------------------------------------------------

ANSIBLE_FILE = f"""plugin: amazon.aws.aws_ec2
regions: [{REGION}]
filters:
  tag:Role: isatap
exclude_filters:
  - tag:Keep: "no"
hostnames:
  - tag:Name
  - private-ip-address
keyed_groups:
  - key: tags.Role
    prefix: role
  - key: placement.availability_zone
    prefix: az
compose:
  ansible_host: private_ip_address
strict: false
"""


def test_an_ansible_file_is_read_with_ansibles_meaning(aws_env, tmp_path):
    client = ec2()
    _, (subnet,) = make_vpc(client)
    launch(client, subnet, {"Name": "alpha", "Role": "isatap"})
    unnamed = launch(client, subnet, {"Role": "isatap"})[0]
    launch(client, subnet, {"Name": "gone", "Role": "isatap", "Keep": "no"})
    launch(client, subnet, {"Name": "web", "Role": "web"})
    (tmp_path / "defaults.yaml").write_text(f"username: ec2-user\ndata: {{isatap_prefix: '{PREFIX}'}}\n")
    path = tmp_path / "bed.aws_ec2.yml"
    path.write_text(ANSIBLE_FILE)
    raw = described(client)
    hosts = hosts_of(path)
    unnamed_ip = raw[unnamed]["PrivateIpAddress"]
    assert set(hosts) == {"alpha", unnamed_ip}  # hostnames: the name, first that has a value
    assert all(h.ssh_host == str(h.ipv4) for h in hosts.values())  # compose.ansible_host
    assert hosts["alpha"].groups[0] == "role_isatap" and hosts["alpha"].groups[1].startswith("az_")
    assert hosts["alpha"].username == "ec2-user"


def test_an_ansible_file_without_compose_connects_where_its_name_points(aws_env, tmp_path):
    client = ec2()
    _, (subnet,) = make_vpc(client)
    tagged = launch(client, subnet, {"Name": "alpha"})[0]
    bare = launch(client, subnet)[0]
    (tmp_path / "defaults.yaml").write_text(f"data: {{isatap_prefix: '{PREFIX}'}}\n")
    path = tmp_path / "aws_ec2.yml"
    path.write_text("plugin: aws_ec2\nhostnames: ['tag:Name', private-dns-name]\n")
    raw = described(client)
    hosts = {h.nornir_host.data["ec2"]["instance_id"]: h for h in load_inventory(path).hosts}
    # named by a tag (not an address): SSH goes to the private IPv4; by a DNS name: there
    assert (hosts[tagged].name, hosts[tagged].ssh_host) == ("alpha", raw[tagged]["PrivateIpAddress"])
    assert hosts[bare].name == hosts[bare].ssh_host == raw[bare]["PrivateDnsName"]

    default = tmp_path / "default" / "aws_ec2.yaml"  # Ansible's default: dns-name, private-dns-name
    default.parent.mkdir()
    (default.parent / "defaults.yaml").write_text(f"data: {{isatap_prefix: '{PREFIX}'}}\n")
    default.write_text("plugin: amazon.aws.aws_ec2\n")
    assert sorted(h.ssh_host for h in load_inventory(default).hosts) == sorted(
        raw[i]["PrivateDnsName"] for i in (tagged, bare))


def test_an_ansible_file_with_unsupported_options_is_refused_naming_every_one(aws_env, tmp_path):
    path = tmp_path / "aws_ec2.yml"
    path.write_text("""plugin: amazon.aws.aws_ec2
regions: [eu-west-1]
hostnames:
  - name: tag:Name
    separator: "-"
    prefix: tag:Env
  - network-interface.addresses.association.public-ip
keyed_groups:
  - key: security_groups|json_query("[].group_id")
    prefix: sg
  - key: tags.Role
    parent_group: roles
compose:
  ansible_host: public_ip_address
  ansible_user: "'ec2-user'"
groups:
  isatap: "'isatap' in tags.Role"
cache: true
use_ssm_inventory: true
""")
    with pytest.raises(InventoryError) as raised:
        load_inventory(path)
    message = str(raised.value)
    for option in ("hostnames: an entry with name/prefix/separator",
                   "hostnames: 'network-interface.addresses.association.public-ip'",
                   "keyed_groups[0].key", "keyed_groups[1].parent_group", "compose.ansible_user",
                   "groups", "cache", "use_ssm_inventory"):
        assert option in message, option
    assert "compose.ansible_host" not in message  # public_ip_address is supported
    assert raised.value.file == str(path) and raised.value.field == "groups"

    done = run_fleet(["inventory", "-i", str(path)], tmp_path, env=aws_env)
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert str(path) in line and "use_ssm_inventory" in line and "Traceback" not in line


def test_an_ansible_file_refuses_strict_and_profile_aliases_given_twice(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # would fail if it were asked
    strict = tmp_path / "strict.aws_ec2.yml"
    strict.write_text("plugin: aws_ec2\nstrict: true\n")
    with pytest.raises(InventoryError, match="strict: true"):
        load_inventory(strict)
    twice = tmp_path / "twice.aws_ec2.yml"
    twice.write_text("plugin: aws_ec2\naws_profile: a\nboto_profile: b\n")
    with pytest.raises(InventoryError, match="aliases") as raised:
        load_inventory(twice)
    assert raised.value.field == "boto_profile"
