"""The EC2 inventory source against moto in server mode (real boto3, real HTTP on 127.0.0.1), and
its failures against a tiny local HTTP server that answers EC2's calls with errors or non-XML."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from awserrors import Answer, error_endpoints

from fleet.core.errors import InventoryError
from fleet.inventory import load_inventory
from tests.motoserver import REGION

REPO = Path(__file__).resolve().parents[2]
PREFIX = "fd00:5efe:1ab::/64"


def ec2():
    import boto3

    return boto3.client("ec2", region_name=REGION)


def make_vpc(client, cidr="10.1.0.0/16", subnets=("10.1.1.0/24",)):
    vpc = client.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    return vpc, [client.create_subnet(VpcId=vpc, CidrBlock=s)["Subnet"]["SubnetId"] for s in subnets]


def launch(client, subnet, tags=None, count=1, groups=()):
    spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] \
        if tags else []
    image = client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    done = client.run_instances(ImageId=image, MinCount=count, MaxCount=count, InstanceType="t3.micro",
                                SubnetId=subnet, TagSpecifications=spec,
                                **({"SecurityGroupIds": list(groups)} if groups else {}))
    return [i["InstanceId"] for i in done["Instances"]]


def source(tmp_path: Path, text: str, name="aws_ec2.yaml") -> Path:
    path = tmp_path / name
    path.write_text("plugin: fleet.aws_ec2\n" + text)
    return path


BASIC = f"defaults: {{username: ec2-user, data: {{isatap_prefix: '{PREFIX}'}}}}\n"


def test_instances_become_hosts_with_names_groups_ipv4_and_ec2_data(aws_env, tmp_path):
    client = ec2()
    vpc, (subnet_a, subnet_b) = make_vpc(client, subnets=("10.1.1.0/24", "10.1.2.0/24"))
    sg = client.create_security_group(GroupName="isatap", Description="protocol 41", VpcId=vpc)["GroupId"]
    web = launch(client, subnet_a, {"Name": "web 1", "Role": "isatap"}, groups=[sg])[0]
    bare = launch(client, subnet_b, {"Role": "isatap"})[0]
    path = source(tmp_path, BASIC + "groups_from: ['tag:Role', vpc, subnet]\n")

    inventory = load_inventory(path)
    hosts = {h.name: h for h in inventory.hosts}
    assert set(hosts) == {"web-1", bare}  # the Name tag sanitised, else the instance id
    raw = {i["InstanceId"]: i for r in client.describe_instances()["Reservations"] for i in r["Instances"]}
    web_host = hosts["web-1"]
    assert str(web_host.ipv4) == raw[web]["PrivateIpAddress"] == web_host.ssh_host  # private-ip default
    assert web_host.username == "ec2-user"
    assert str(web_host.prefix) == PREFIX
    assert web_host.groups == ("tag_Role_isatap", f"vpc_{vpc}", f"subnet_{subnet_a}")
    assert hosts[bare].groups == ("tag_Role_isatap", f"vpc_{vpc}", f"subnet_{subnet_b}")
    ec2_data = web_host.nornir_host.data["ec2"]
    assert ec2_data == {
        "instance_id": web, "region": REGION, "vpc_id": vpc, "subnet_id": subnet_a,
        "availability_zone": raw[web]["Placement"]["AvailabilityZone"], "instance_type": "t3.micro",
        "security_groups": [g["GroupId"] for g in raw[web]["SecurityGroups"]],
        "private_ip": raw[web]["PrivateIpAddress"], "private_dns": raw[web]["PrivateDnsName"],
        "public_ip": raw[web].get("PublicIpAddress"),
        "public_dns": raw[web].get("PublicDnsName") or None, "tags": {"Name": "web 1", "Role": "isatap"}}
    assert ec2_data["security_groups"] == [sg]
    assert web_host.nornir_host.data["ipv4"] == raw[web]["PrivateIpAddress"]
    assert inventory.select(groups=["tag_Role_isatap"]).hosts == inventory.hosts


def test_filters_apply_and_stopped_instances_are_left_out(aws_env, tmp_path):
    client = ec2()
    vpc, (subnet,) = make_vpc(client)
    other_vpc, (other_subnet,) = make_vpc(client, cidr="10.2.0.0/16", subnets=("10.2.1.0/24",))
    keep = launch(client, subnet, {"Name": "keep", "Role": "isatap"})[0]
    stopped = launch(client, subnet, {"Name": "stopped", "Role": "isatap"})[0]
    launch(client, subnet, {"Name": "web", "Role": "web"})
    launch(client, other_subnet, {"Name": "elsewhere", "Role": "isatap"})
    client.stop_instances(InstanceIds=[stopped])

    path = source(tmp_path, BASIC + f"filters: {{'tag:Role': isatap, vpc-id: {vpc}}}\n")
    assert [h.name for h in load_inventory(path).hosts] == ["keep"]
    assert keep

    stopped_too = source(tmp_path, BASIC + f"filters: {{'tag:Role': isatap, vpc-id: {vpc},"
                                           " instance-state-name: [running, stopped]}\n", "all.yaml")
    assert sorted(h.name for h in load_inventory(stopped_too).hosts) == ["keep", "stopped"]


def test_duplicate_names_are_made_unique_with_the_instance_id(aws_env, tmp_path):
    client = ec2()
    _, (subnet,) = make_vpc(client)
    ids = launch(client, subnet, {"Name": "node"}, count=2)
    names = sorted(h.name for h in load_inventory(source(tmp_path, BASIC)).hosts)
    assert names == sorted(f"node-{i}" for i in ids)


def test_a_name_tag_that_reads_like_a_suffixed_name_is_refused_naming_both_instances(aws_env, tmp_path):
    client = ec2()
    _, (subnet,) = make_vpc(client)
    first, second = launch(client, subnet, {"Name": "web"}, count=2)
    third = launch(client, subnet, {"Name": f"web-{first}"})[0]
    path = source(tmp_path, BASIC)
    with pytest.raises(InventoryError) as raised:
        load_inventory(path)
    message = str(raised.value)
    assert (raised.value.file, raised.value.field) == (str(path), "name_from")
    assert first in message and third in message and repr(f"web-{first}") in message
    assert second not in message

    done = run_fleet(["inventory", "-i", str(path)], tmp_path, env=aws_env)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert first in done.stderr and third in done.stderr

    by_id = source(tmp_path, BASIC + "name_from: instance-id\n", "by_id.yaml")
    assert sorted(h.name for h in load_inventory(by_id).hosts) == sorted([first, second, third])


def test_a_name_tag_equal_to_another_instances_id_keeps_both_hosts(aws_env, tmp_path):
    client = ec2()
    _, (subnet,) = make_vpc(client)
    bare = launch(client, subnet)[0]
    impostor = launch(client, subnet, {"Name": bare})[0]
    hosts = load_inventory(source(tmp_path, BASIC)).hosts
    assert sorted((h.name, h.nornir_host.data["ec2"]["instance_id"]) for h in hosts) == sorted(
        [(bare, bare), (f"{bare}-{impostor}", impostor)])


def test_hostnames_public_ip_and_dns(aws_env, tmp_path):
    client = ec2()
    launch(client, client.describe_subnets()["Subnets"][0]["SubnetId"], {"Name": "pub"})  # default VPC
    raw = client.describe_instances()["Reservations"][0]["Instances"][0]
    if not raw.get("PublicIpAddress") or not raw.get("PublicDnsName"):
        pytest.skip("this moto gives no public address to an instance in the default VPC")
    for choice, key in (("public-ip", "PublicIpAddress"), ("public-dns", "PublicDnsName")):
        path = source(tmp_path, BASIC + f"hostnames: {choice}\n", f"{choice}.yaml")
        (host,) = load_inventory(path).hosts
        assert host.ssh_host == raw[key]
        assert str(host.ipv4) == raw["PrivateIpAddress"]


def test_defaults_yaml_beside_the_file_is_read_and_the_file_wins(aws_env, tmp_path):
    client = ec2()
    _, (subnet,) = make_vpc(client)
    launch(client, subnet, {"Name": "one"})
    (tmp_path / "defaults.yaml").write_text(
        f"username: admin\nport: 2222\ndata: {{isatap_prefix: '{PREFIX}'}}\n")
    (host,) = load_inventory(source(tmp_path, "defaults: {username: ec2-user}\n")).hosts
    assert (host.username, host.ssh_port, str(host.prefix)) == ("ec2-user", 2222, PREFIX)


def test_the_same_validation_as_files_names_the_source_file(aws_env, tmp_path):
    client = ec2()
    _, (subnet,) = make_vpc(client)
    launch(client, subnet, {"Name": "one"})
    path = source(tmp_path, "defaults: {username: '-oProxyCommand=x'}\n")
    with pytest.raises(InventoryError) as raised:
        load_inventory(path)
    assert raised.value.file == str(path) and raised.value.host == "one"
    with pytest.raises(InventoryError, match="isatap_prefix") as raised:
        load_inventory(source(tmp_path, "", "noprefix.yaml"))
    assert raised.value.file == str(tmp_path / "noprefix.yaml")


def test_no_running_instance_is_an_error(aws_env, tmp_path):
    path = source(tmp_path, BASIC + "filters: {'tag:Role': isatap}\n")
    with pytest.raises(InventoryError, match="no running instance matches the filters") as raised:
        load_inventory(path)
    assert raised.value.file == str(path) and "tag:Role=isatap" in str(raised.value)


@pytest.mark.parametrize(("text", "field", "words"), [
    ("hostnames: elastic-ip\n", "hostnames", "unknown value 'elastic-ip'"),
    ("regionz: [eu-west-1]\n", "regionz", "unknown key"),
    ("groups_from: [owner]\n", "groups_from", "tag:KEY"),
    ("filters: [a]\n", "filters", "mapping"),
])
def test_bad_source_files_are_refused_before_asking_aws(tmp_path, text, field, words, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # would fail if it were asked
    path = source(tmp_path, text)
    with pytest.raises(InventoryError, match=words) as raised:
        load_inventory(path)
    assert (raised.value.file, raised.value.field) == (str(path), field)


def test_a_file_without_the_plugin_marker_is_refused(tmp_path):
    path = tmp_path / "hosts.yaml"
    path.write_text("a: {hostname: 10.0.0.1}\n")
    with pytest.raises(InventoryError, match="plugin: fleet.aws_ec2") as raised:
        load_inventory(path)
    assert raised.value.file == str(path)


def test_an_instance_without_a_private_ipv4_is_named(tmp_path):
    from fleet.aws.ec2_inventory import Instance, inventory_files, parse_source

    parsed = parse_source(tmp_path / "aws_ec2.yaml", {"plugin": "fleet.aws_ec2"})
    lost = Instance("i-0abc", REGION, None, None, (), None, None, None, {"Name": "lost"})
    with pytest.raises(InventoryError, match="instance i-0abc has no private IPv4") as raised:
        inventory_files(parsed, [lost])
    assert (raised.value.host, raised.value.field) == ("lost", "data.ipv4")


# --- failures: a local HTTP server (tests/awserrors.py) answers EC2's calls with errors ----------

@pytest.fixture
def error_endpoint(aws_env, monkeypatch):
    yield from error_endpoints(aws_env, monkeypatch)


def test_throttling_is_reported_after_the_retries(error_endpoint, tmp_path):
    seen = error_endpoint(Answer.error(503, "RequestLimitExceeded"))
    path = source(tmp_path, BASIC)
    with pytest.raises(InventoryError, match="throttled.*still after 2 attempts") as raised:
        load_inventory(path)
    assert raised.value.file == str(path)
    assert len(seen) == 2  # AWS_MAX_ATTEMPTS=2: boto3 retried once


@pytest.mark.parametrize("code", ["UnauthorizedOperation", "AuthFailure"])
def test_access_denied_is_reported(error_endpoint, tmp_path, code):
    error_endpoint(Answer.error(403, code))
    path = source(tmp_path, BASIC)
    with pytest.raises(InventoryError, match=f"access denied.*{code}") as raised:
        load_inventory(path)
    assert raised.value.file == str(path)


def test_an_endpoint_answering_200_with_something_not_xml_is_an_inventory_error(error_endpoint, tmp_path,
                                                                                aws_env):
    error_endpoint(Answer.not_xml())
    path = source(tmp_path, BASIC)
    with pytest.raises(InventoryError, match="not an EC2 response") as raised:
        load_inventory(path)
    assert raised.value.file == str(path) and "\n" not in str(raised.value)
    assert REGION in str(raised.value)

    done = run_fleet(["inventory", "-i", str(path)], tmp_path, env=aws_env)
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert str(path) in line and "not an EC2 response" in line


def test_an_unreachable_endpoint_is_reported(aws_env, tmp_path, monkeypatch):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    path = source(tmp_path, BASIC)
    with pytest.raises(InventoryError, match="cannot reach the EC2 endpoint") as raised:
        load_inventory(path)
    assert raised.value.file == str(path)


def test_no_credentials_is_reported(aws_env, tmp_path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "missing"))
    path = source(tmp_path, BASIC)
    with pytest.raises(InventoryError, match="no AWS credentials found") as raised:
        load_inventory(path)
    assert raised.value.file == str(path)


# --- the command line and Nornir ----------------------------------------------------------------

def run_fleet(args: list[str], cwd: Path, env: dict[str, str] | None = None,
              block_boto3: bool = False) -> subprocess.CompletedProcess[str]:
    blocked = "sys.modules['boto3'] = sys.modules['botocore'] = None\n" if block_boto3 else ""
    code = f"import runpy, sys\n{blocked}runpy.run_module('fleet', run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {}), "PYTHONPATH": str(REPO)}, timeout=120)


def test_fleet_inventory_lists_the_ec2_hosts(aws_env, tmp_path):
    client = ec2()
    _, (subnet,) = make_vpc(client)
    launch(client, subnet, {"Name": "alpha", "Role": "isatap"})
    launch(client, subnet, {"Name": "beta", "Role": "isatap"})
    path = source(tmp_path, BASIC + "groups_from: ['tag:Role']\n")
    done = subprocess.run([sys.executable, "-m", "fleet", "inventory", "-i", str(path), "--json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, **aws_env, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    hosts = json.loads(done.stdout)["hosts"]
    assert sorted(h["name"] for h in hosts) == ["alpha", "beta"]
    assert all(h["groups"] == ["tag_Role_isatap"] and h["ssh"] == f"{h['ipv4']}:22" for h in hosts)


def test_fleet_inventory_without_boto3_says_how_to_install_it(tmp_path):
    path = source(tmp_path, BASIC)
    done = run_fleet(["inventory", "-i", str(path)], tmp_path, block_boto3=True)
    assert done.returncode == 2
    assert "pip install 'fleet-isatap[aws]'" in done.stderr and str(path) in done.stderr


def test_fleet_inventory_help_names_the_file_form():
    done = run_fleet(["inventory", "--help"], REPO)
    assert "DIR|FILE" in done.stdout and "fleet.aws_ec2" in done.stdout


def test_the_nornir_plugin_loads_the_ec2_source(aws_env, tmp_path):
    from nornir import InitNornir
    from nornir.core.plugins.inventory import InventoryPluginRegister

    from fleet.nornir.inventory import FleetEC2Inventory

    InventoryPluginRegister.register("FleetEC2Inventory", FleetEC2Inventory)
    client = ec2()
    _, (subnet,) = make_vpc(client)
    launch(client, subnet, {"Name": "alpha"})
    options = {"source": str(source(tmp_path, BASIC))}
    nr = InitNornir(inventory={"plugin": "FleetEC2Inventory", "options": options}, logging={"enabled": False})
    assert list(nr.inventory.hosts) == ["alpha"]
    assert nr.inventory.hosts["alpha"].data["ec2"]["region"] == REGION


def test_the_nornir_plugin_is_registered_as_an_entry_point():
    done = subprocess.run([sys.executable, "-c", (
        "import tomllib; t = tomllib.load(open('pyproject.toml', 'rb'));"
        "print(t['project']['entry-points']['nornir.plugins.inventory']['FleetEC2Inventory'])")],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=True)
    assert done.stdout.strip() == "fleet.nornir.inventory:FleetEC2Inventory"
