import subprocess
from ipaddress import IPv4Address, IPv6Interface

from fleet.iproute import ABSENT, TunnelState
from fleet.tunnel import DesiredTunnel, apply_script, creates_tunnel, plan, teardown_script

DESIRED = DesiredTunnel(local=IPv4Address("172.31.0.11"),
                        address=IPv6Interface("fd00:5efe:1ab::5efe:ac1f:b/64"))
GOOD = TunnelState(exists=True, kind="sit", isatap=True, local=IPv4Address("172.31.0.11"),
                   remote="any", mtu=1480, up=True, addresses=(DESIRED.address,))


def commands(state):
    return [step.command for step in plan(state, DESIRED)]


def test_nothing_to_do_when_it_is_right():
    assert plan(GOOD, DESIRED) == ()


def test_from_nothing_it_is_the_article_recipe():
    assert commands(ABSENT) == [
        "ip tunnel add sit1 mode isatap local 172.31.0.11",
        "ip addr replace fd00:5efe:1ab::5efe:ac1f:b/64 dev sit1",
        "ip link set dev sit1 mtu 1480",
        "ip link set dev sit1 up",
    ]
    assert creates_tunnel(plan(ABSENT, DESIRED))


def test_wrong_local_recreates():
    drifted = TunnelState(**{**GOOD.__dict__, "local": IPv4Address("172.31.0.99")})
    assert commands(drifted)[:2] == ["ip link del sit1",
                                     "ip tunnel add sit1 mode isatap local 172.31.0.11"]


def test_wrong_mode_recreates():
    plain_sit = TunnelState(**{**GOOD.__dict__, "isatap": False})
    assert commands(plain_sit)[0] == "ip link del sit1"


def test_missing_address_and_link_down_are_repaired_in_place():
    drifted = TunnelState(**{**GOOD.__dict__, "addresses": (), "up": False})
    assert commands(drifted) == ["ip addr replace fd00:5efe:1ab::5efe:ac1f:b/64 dev sit1",
                                 "ip link set dev sit1 up"]


def test_stale_address_and_mtu():
    stale = IPv6Interface("2002:ca0c:1e01::5efe:ac1f:b/64")
    drifted = TunnelState(**{**GOOD.__dict__, "addresses": (stale, DESIRED.address), "mtu": 8981})
    assert commands(drifted) == ["ip addr del 2002:ca0c:1e01::5efe:ac1f:b/64 dev sit1",
                                 "ip link set dev sit1 mtu 1480"]


def test_address_with_another_prefix_length_is_not_ours():
    drifted = TunnelState(**{**GOOD.__dict__,
                             "addresses": (IPv6Interface("fd00:5efe:1ab::5efe:ac1f:b/128"),)})
    assert commands(drifted) == ["ip addr del fd00:5efe:1ab::5efe:ac1f:b/128 dev sit1",
                                 "ip addr replace fd00:5efe:1ab::5efe:ac1f:b/64 dev sit1"]


def run_sh(script: str, path_dir) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                          env={"PATH": f"{path_dir}:/usr/bin:/bin"})


def test_apply_script_rolls_back_a_tunnel_it_created(tmp_path):
    # A stand-in `ip` that records its calls and fails on `addr`: the script must delete the
    # tunnel it created and fail, never leave it half-configured.
    log = tmp_path / "calls"
    fake = tmp_path / "ip"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\n[ "$1" = addr ] && exit 2\nexit 0\n')
    fake.chmod(0o755)
    result = run_sh(apply_script(plan(ABSENT, DESIRED)), tmp_path)
    assert result.returncode == 2
    assert log.read_text().splitlines() == [
        "tunnel add sit1 mode isatap local 172.31.0.11",
        "addr replace fd00:5efe:1ab::5efe:ac1f:b/64 dev sit1",
        "link del sit1",
    ]


def test_apply_script_reads_the_state_back_after_success(tmp_path):
    log = tmp_path / "calls"
    fake = tmp_path / "ip"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexit 0\n')
    fake.chmod(0o755)
    result = run_sh(apply_script(plan(ABSENT, DESIRED)), tmp_path)
    assert result.returncode == 0
    calls = log.read_text().splitlines()
    assert "link del sit1" not in calls
    assert calls[-2:] == ["-j -d link show dev sit1", "-j addr show dev sit1"]


def test_teardown_script_is_idempotent(tmp_path):
    fake = tmp_path / "ip"
    fake.write_text("#!/bin/sh\n[ \"$1\" = link ] && [ \"$2\" = show ] && exit 1\nexit 0\n")
    fake.chmod(0o755)
    assert run_sh(teardown_script(), tmp_path).stdout.strip() == "absent"
