"""Hosts behind a bastion, on real sshd and real kernels (the lab's QEMU guests).

One guest is the bastion, reached on its loopback forward as a public address would be; the others
are reached only by their private addresses, through it (asyncssh's `tunnel` in the inventory, as
OpenSSH's ProxyJump). Setup and the mesh work across them, and the bastion's own sshd log shows one
login per run, however many hosts are behind it.
"""

from __future__ import annotations

import os

import pytest
from labtools import fleet, fleet_json, on_guest
from ruamel.yaml import YAML

from fleet.inventory import write_inventory
from fleet.lab import check_prerequisites

# The shared lab's 4 guests (tests/lab/conftest.py): h1 the bastion; h2, h3, h4 behind it
PROBLEMS = ["needs root"] if os.geteuid() != 0 else check_prerequisites()
pytestmark = [pytest.mark.skipif(bool(PROBLEMS), reason="; ".join(PROBLEMS) or "ready")]


def behind_the_bastion(lab, directory):
    """An inventory of h2..h4 at their private addresses, through h1 on its forwarded port."""
    yaml = YAML(typ="safe")
    hosts = yaml.load((lab.inventory_dir / "hosts.yaml").read_text())
    defaults = yaml.load((lab.inventory_dir / "defaults.yaml").read_text())
    extras = defaults["connection_options"]["asyncssh"]["extras"]
    lines = (lab.inventory_dir / "known_hosts").read_text().splitlines()
    key_of = {int(line.split()[0].split("]:")[1]): " ".join(line.split()[1:3]) for line in lines}
    bastion_port = hosts["h1"]["port"]
    behind = {name: h for name, h in hosts.items() if name != "h1"}
    known = directory / "known_hosts"
    known.parent.mkdir(parents=True, exist_ok=True)
    known.write_text(f"[127.0.0.1]:{bastion_port} {key_of[bastion_port]}\n" + "".join(
        f"{h['data']['ipv4']} {key_of[h['port']]}\n" for h in behind.values()))
    write_inventory(
        directory,
        hosts={name: {"hostname": h["data"]["ipv4"], "groups": h.get("groups", []), "data": h["data"]}
               for name, h in behind.items()},
        groups={"lab": {}},
        defaults={"username": "root", "data": defaults["data"],
                  "connection_options": {"asyncssh": {"extras": {
                      "client_keys": extras["client_keys"], "known_hosts": str(known),
                      "tunnel": f"root@127.0.0.1:{bastion_port}"}}}})
    return directory


_looks: dict[str, int] = {}


def bastion_logins(lab) -> int:
    """Logins sshd has accepted on h1 so far, not counting the looks like this one (each is a
    login of its own, the one before it included)."""
    done = on_guest(lab, "h1", "grep -c 'Accepted publickey' /run/sshd.log")
    count = int(done.stdout.strip())  # type: ignore[attr-defined]
    _looks[lab.name] = _looks.get(lab.name, 0) + 1
    return count - _looks[lab.name]


def test_setup_and_mesh_through_one_bastion_login_per_run(lab, tmp_path):
    inventory = behind_the_bastion(lab, tmp_path / "inv")
    before = bastion_logins(lab)
    setup = fleet(lab, "run", "setup", inventory=inventory)
    after_setup = bastion_logins(lab)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    done, report = fleet_json(lab, tmp_path, "run", "mesh", inventory=inventory)
    after_mesh = bastion_logins(lab)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(report["pairs"]) == 6 and all(p["state"] == "ok" for p in report["pairs"])
    assert report["verdict"]["text"] == "ALL OK"
    # three hosts behind it, one login on the bastion for each run
    assert (after_setup - before, after_mesh - after_setup) == (1, 1)
    teardown = fleet(lab, "run", "teardown", inventory=inventory)
    assert teardown.returncode == 0, teardown.stdout + teardown.stderr


def test_a_bastion_whose_key_changed_fails_every_host_behind_it_with_that_kind(lab, tmp_path):
    inventory = behind_the_bastion(lab, tmp_path / "inv")
    known = inventory / "known_hosts"
    lines = known.read_text().splitlines()
    # the bastion's line with another guest's key: as if the bastion had been replaced
    lines[0] = f"{lines[0].split()[0]} {' '.join(lines[1].split()[1:3])}"
    known.write_text("\n".join(lines) + "\n")
    before = bastion_logins(lab)
    done, report = fleet_json(lab, tmp_path, "run", "setup", inventory=inventory)
    tried = bastion_logins(lab) - before
    assert done.returncode == 1
    kinds = {h["name"]: h["error_kind"] for h in report["hosts"]}
    assert kinds == {"h2": "host-key-changed", "h3": "host-key-changed", "h4": "host-key-changed"}, report
    assert "jump host 127.0.0.1" in done.stdout + done.stderr
    assert tried == 0  # refused at the host key, before any login
