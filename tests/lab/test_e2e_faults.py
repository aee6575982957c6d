"""The fault catalogue, end to end on real kernels (the lab's QEMU guests), driven by the CLI.

Each case breaks something the way it breaks in the field, runs fleet, and asserts the exact state
of every host and pair, the error kinds and the exit code, then reads the guests' kernels (outside
fleet) to check what fleet says: a foreign sit1 refused and intact, one made by hand adopted in
place, drift repaired, an apply failing midway rolled back, protocol 41 dropped for one guest,
random loss on one guest, a wrong client key, a changed host key under each policy, an unknown
one recorded by accept-new, a hanging command, a setup stopped by its timeout, and last (they
break guests for good) sshd stopped on one guest and a guest killed during a mesh.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

import pytest
from conftest import wait_for
from labtools import fleet, fleet_json, global_addresses, link_json, on_guest, on_guests

from fleet.lab import check_prerequisites

GUESTS = ["h1", "h2", "h3", "h4"]
PROBLEMS = ["needs root"] if os.geteuid() != 0 else check_prerequisites()
if shutil.which("nft") is None:
    PROBLEMS = [*PROBLEMS, "needs nft (nftables)"]
pytestmark = [pytest.mark.skipif(bool(PROBLEMS), reason="; ".join(PROBLEMS) or "ready")]
ADDRESS = {"h1": "fd00:5efe:1ab::5efe:ac1f:b/64", "h2": "fd00:5efe:1ab::5efe:ac1f:c/64",
           "h3": "fd00:5efe:1ab::5efe:ac1f:d/64", "h4": "fd00:5efe:1ab::5efe:ac1f:e/64"}


@pytest.fixture
def configured(lab, tmp_path):
    """Every guest with fleet's sit1, as after `fleet run setup`."""
    done = fleet(lab, "run", "setup")
    assert done.returncode == 0, done.stdout + done.stderr
    return lab


def hosts_by_name(report):
    return {h["name"]: h for h in report["hosts"]}


def pair_states(report):
    return {(p["src"], p["dst"]): p["state"] for p in report["pairs"]}


def nft(lab, rules: str) -> None:
    """Load (or with an empty text, remove) a bridge-family table in the lab's namespace: the
    security group and NACL analogue, on the bridge between the guests."""
    subprocess.run(["ip", "netns", "exec", lab.netns, "nft", "delete", "table", "bridge",
                    "fleetfault"], capture_output=True)
    if rules:
        subprocess.run(["ip", "netns", "exec", lab.netns, "nft", "-f", "-"], check=True, text=True,
                       input=f"table bridge fleetfault {{\n chain c {{\n  type filter hook forward "
                             f"priority 0;\n{rules}\n }}\n}}\n")


def test_a_foreign_sit1_is_refused_and_left_intact_unless_replace(configured, tmp_path):
    lab = configured
    on_guest(lab, "h2", "ip link del sit1; ip tunnel add sit1 mode sit remote 198.51.100.7 "
             "local 172.31.0.12 ttl 64 && ip addr add 2001:db8:7::2/64 dev sit1 && ip link set sit1 up")
    before = link_json(lab, "h2")
    for task in ("setup", "teardown"):
        done, report = fleet_json(lab, tmp_path, "run", task)
        assert done.returncode == 1, done.stdout + done.stderr
        h2 = hosts_by_name(report)["h2"]
        assert h2["failed"] and h2["error_kind"] == "foreign-tunnel"
        assert "remote 198.51.100.7" in h2["error"] and "--replace" in h2["error"]
        assert link_json(lab, "h2") == before  # the kernel's own view: not touched at all
        assert global_addresses(lab, "h2") == {"2001:db8:7::2/64"}
        if task == "teardown":
            assert all(hosts_by_name(report)[g]["changed"] for g in ("h1", "h3", "h4"))
    done = fleet(lab, "run", "setup", "--replace", "-l", "h2")
    assert done.returncode == 0, done.stdout + done.stderr
    info = link_json(lab, "h2")["linkinfo"]["info_data"]
    assert info["isatap"] is True and info["remote"] == "any"
    assert global_addresses(lab, "h2") == {ADDRESS["h2"]}


def test_a_sit1_made_by_hand_is_adopted_in_place(configured, tmp_path):
    lab = configured
    on_guest(lab, "h3", "ip link del sit1; ip tunnel add sit1 mode isatap local 172.31.0.13 && "
             f"ip addr add {ADDRESS['h3']} dev sit1 && ip link set sit1 up")  # the walk-through
    index = link_json(lab, "h3")["ifindex"]
    done, report = fleet_json(lab, tmp_path, "run", "setup")
    assert done.returncode == 0, done.stdout + done.stderr
    h3 = hosts_by_name(report)["h3"]
    assert h3["result"]["owner"] == "adoptable"
    assert h3["result"]["changes"] == ["adopt sit1 (an ISATAP tunnel made by hand): mark it as fleet's"]
    after = link_json(lab, "h3")
    assert after["ifindex"] == index and after["ifalias"] == "fleet-isatap"  # the same device


def test_drift_is_repaired_and_said(configured, tmp_path):
    lab = configured
    on_guest(lab, "h4", "ip addr flush dev sit1 scope global; ip addr add "
             "2002:ca0c:1e01::5efe:ac1f:e/64 dev sit1; ip link set dev sit1 mtu 1400")
    done, report = fleet_json(lab, tmp_path, "run", "setup")
    assert done.returncode == 0, done.stdout + done.stderr
    assert hosts_by_name(report)["h4"]["result"]["changes"] == [
        "remove stale address 2002:ca0c:1e01::5efe:ac1f:e/64", f"add address {ADDRESS['h4']}",
        "set mtu 1480 (was 1400)"]
    assert [h["name"] for h in report["hosts"] if h["changed"]] == ["h4"]
    assert global_addresses(lab, "h4") == {ADDRESS["h4"]} and link_json(lab, "h4")["mtu"] == 1480


def test_an_apply_that_fails_midway_puts_the_earlier_state_back(configured, tmp_path):
    lab = configured
    stale = "2002:ca0c:1e01::5efe:ac1f:b/64"
    # h1: its address replaced by an old one and MTU changed; then an `ip` that refuses to add
    # the new address (first on root's PATH: the kernel and the real `ip` do everything else)
    on_guest(lab, "h1", f"ip addr del {ADDRESS['h1']} dev sit1; ip addr add {stale} dev sit1; "
             "ip link set dev sit1 mtu 1400; mkdir -p /usr/local/sbin; printf '%s\\n' '#!/bin/sh' "
             "'case \"$*\" in *\"addr replace\"*) echo \"RTNETLINK answers: refused (injected)\" >&2; "
             "exit 2;; esac' 'exec /usr/bin/ip \"$@\"' > /usr/local/sbin/ip; chmod +x /usr/local/sbin/ip")
    before = link_json(lab, "h1")
    try:
        done, report = fleet_json(lab, tmp_path, "run", "setup")
    finally:
        on_guest(lab, "h1", "rm -f /usr/local/sbin/ip")
    assert done.returncode == 1, done.stdout + done.stderr
    h1 = hosts_by_name(report)["h1"]
    assert h1["error_kind"] == "command"
    assert f"failed at 'add address {ADDRESS['h1']}'; rolled back" in h1["error"]
    assert "is as it was (read again)" in h1["error"] and "injected" in h1["error"]
    assert link_json(lab, "h1") == before and global_addresses(lab, "h1") == {stale}
    assert [h["name"] for h in report["hosts"] if h["failed"]] == ["h1"]


def test_protocol_41_dropped_for_one_guest_fails_its_row_and_column_only(configured, tmp_path):
    lab = configured
    nft(lab, '  iifname "tap2" ip protocol 41 drop\n  oifname "tap2" ip protocol 41 drop')
    try:
        done, report = fleet_json(lab, tmp_path, "run", "mesh", "--count", "2")
        ssh_still_fine = fleet(lab, "run", "setup", "-l", "h2")
    finally:
        nft(lab, "")
    assert done.returncode == 1, done.stdout + done.stderr
    for (src, dst), state in pair_states(report).items():
        assert state == ("unreachable" if "h2" in (src, dst) else "ok"), (src, dst)
    assert hosts_by_name(report)["h2"]["state"] == "ok"  # it probed; its packets went nowhere
    assert ssh_still_fine.returncode == 0, ssh_still_fine.stdout + ssh_still_fine.stderr


def test_random_loss_on_one_guest_makes_its_pairs_lossy(configured, tmp_path):
    lab = configured
    nft(lab, '  iifname "tap3" ip protocol 41 numgen random mod 10 < 3 drop\n'
             '  oifname "tap3" ip protocol 41 numgen random mod 10 < 3 drop')
    try:
        done, report = fleet_json(lab, tmp_path, "run", "mesh", "--count", "20", "--interval", "0.05")
    finally:
        nft(lab, "")
    assert done.returncode == 1
    for pair in report["pairs"]:
        if "h3" in (pair["src"], pair["dst"]):
            # 30 % each way: about half of the echoes lost; never none, never all of 20
            assert pair["state"] == "lossy" and 5 <= pair["loss_pct"] <= 95, pair
        else:
            assert pair["state"] == "ok", pair


def inventory_copy(lab, tmp_path, *, client_key=None, known_hosts=None):
    """The lab's inventory with another client key or known_hosts file (the guests unchanged)."""
    import shutil as sh

    copy = tmp_path / f"inv-{uuid.uuid4().hex[:6]}"
    sh.copytree(lab.inventory_dir, copy)
    defaults = (copy / "defaults.yaml").read_text()
    if client_key is not None:
        old = next(line for line in defaults.splitlines() if "id_ed25519" in line)
        defaults = defaults.replace(old, f'        - "{client_key}"')
    known = copy / "known_hosts"
    defaults = defaults.replace(str(lab.inventory_dir / "known_hosts"), str(known))
    if known_hosts is not None:
        known.write_text(known_hosts)
    (copy / "defaults.yaml").write_text(defaults)
    return copy


def other_key(tmp_path, name="other"):
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def test_a_wrong_client_key_is_auth_on_every_host(lab, tmp_path):
    inventory = inventory_copy(lab, tmp_path, client_key=other_key(tmp_path))
    done, report = fleet_json(lab, tmp_path, "run", "setup", inventory=inventory)
    assert done.returncode == 1
    assert {h["name"]: h["error_kind"] for h in report["hosts"]} == {g: "auth" for g in GUESTS}
    assert all("authentication failed" in h["error"] for h in report["hosts"]), report["hosts"]


def test_a_changed_host_key_is_named_as_changed_under_every_policy(configured, tmp_path):
    lab = configured
    port = next(g.ssh_port for g in lab.guests if g.name == "h1")
    real = (lab.inventory_dir / "known_hosts").read_text().splitlines()
    impostor_key = other_key(tmp_path, "impostor")
    swapped = [f"[127.0.0.1]:{port} {impostor_key.with_suffix('.pub').read_text().split()[0]} "
               f"{impostor_key.with_suffix('.pub').read_text().split()[1]}" if line.startswith(
                   f"[127.0.0.1]:{port} ") else line for line in real]
    assert swapped != real
    for policy in ("yes", "accept-new"):
        inventory = inventory_copy(lab, tmp_path, known_hosts="\n".join(swapped) + "\n")
        done, report = fleet_json(lab, tmp_path, "run", "mesh", "--count", "1",
                                  "--host-key-checking", policy, inventory=inventory)
        assert done.returncode == 1
        h1 = hosts_by_name(report)["h1"]
        assert h1["error_kind"] == "host-key-changed", h1
        assert "ssh-keygen -R" in h1["error"]
        assert {h["state"] for n, h in hosts_by_name(report).items() if n != "h1"} == {"ok"}
        # the changed key is never recorded, even by accept-new
        assert (inventory / "known_hosts").read_text() == "\n".join(swapped) + "\n"
    inventory = inventory_copy(lab, tmp_path, known_hosts="\n".join(swapped) + "\n")
    done = fleet(lab, "run", "setup", "--host-key-checking", "no", inventory=inventory)
    assert done.returncode == 0, done.stdout + done.stderr  # accepted, with a warning
    assert "WARNING: h1:" in done.stderr


def test_accept_new_records_an_unknown_host_and_trusts_it_next_time(configured, tmp_path):
    lab = configured
    port = next(g.ssh_port for g in lab.guests if g.name == "h2")
    real = (lab.inventory_dir / "known_hosts").read_text().splitlines()
    without_h2 = [line for line in real if not line.startswith(f"[127.0.0.1]:{port} ")]
    inventory = inventory_copy(lab, tmp_path, known_hosts="\n".join(without_h2) + "\n")
    done, report = fleet_json(lab, tmp_path, "run", "setup", inventory=inventory)
    assert hosts_by_name(report)["h2"]["error_kind"] == "host-key-unknown"
    done = fleet(lab, "run", "setup", "--host-key-checking", "accept-new", inventory=inventory)
    assert done.returncode == 0, done.stdout + done.stderr
    recorded = (inventory / "known_hosts").read_text().splitlines()
    assert any(line.startswith(f"[127.0.0.1]:{port} ssh-ed25519 ") for line in recorded)
    done = fleet(lab, "run", "setup", inventory=inventory)  # now known: `yes` lets it in
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_hanging_command_times_out_and_nothing_of_it_keeps_running(configured, tmp_path):
    lab = configured
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "hang.py").write_text(
        '"""Start something slow that would write a file later, then hang."""\n'
        "async def run(host):\n"
        "    await host.run('(sleep 6; touch /tmp/fleet-late) & sleep 300', as_root=True, check=True)\n"
        "    return host.result('finished')\n")
    on_guest(lab, "h1", "rm -f /tmp/fleet-late")
    done, report = fleet_json(lab, tmp_path, "run", "hang", "-l", "h1", "--tasks-dir", tasks,
                              "--command-timeout", "3")
    assert done.returncode == 1
    h1 = hosts_by_name(report)["h1"]
    assert h1["error_kind"] == "timeout" and "stopped it on the host" in h1["error"], h1
    # Once the command's processes are gone, nothing of it can write the file any more; a
    # background job that survived would write it first (6 s in) and fail the test then.
    wait_for(lambda: on_guest(lab, "h1", "ps -o pid,args | grep '[s]leep [36]'").stdout == "",
             "the hanging command's processes to be gone from h1", timeout=20)
    left = on_guest(lab, "h1", "ls /tmp/fleet-late 2>&1")
    assert "No such file" in left.stdout, left.stdout


def test_a_setup_stopped_by_its_timeout_undoes_its_steps(configured, tmp_path):
    lab = configured
    stale = "2002:ca0c:1e01::5efe:ac1f:d/64"
    on_guest(lab, "h3", f"ip addr del {ADDRESS['h3']} dev sit1; ip addr add {stale} dev sit1; "
             "ip link set dev sit1 mtu 1400; mkdir -p /usr/local/sbin; printf '%s\\n' '#!/bin/sh' "
             "'case \"$*\" in *\"mtu 1480\"*) sleep 60;; esac' 'exec /usr/bin/ip \"$@\"' "
             "> /usr/local/sbin/ip; chmod +x /usr/local/sbin/ip")
    before = link_json(lab, "h3")
    try:
        done, report = fleet_json(lab, tmp_path, "run", "setup", "-l", "h3", "--command-timeout", "4")
    finally:
        on_guest(lab, "h3", "rm -f /usr/local/sbin/ip")
    assert done.returncode == 1
    h3 = hosts_by_name(report)["h3"]
    assert h3["error_kind"] == "timeout", h3
    assert "stopped it on the host" in h3["error"] and "is as it was (read again)" in h3["error"]
    assert link_json(lab, "h3") == before and global_addresses(lab, "h3") == {stale}


def test_sshd_killed_mid_command_is_a_lost_connection_never_ok(lab, tmp_path):
    # A task that does not check exit statuses: the lost connection must fail it all the same.
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "longrun.py").write_text(
        '"""Run a 12-second command and report what it said, its exit status unchecked."""\n'
        "async def run(host):\n"
        "    out = await host.run('echo $$ > /tmp/fleet-longrun.pid; sleep 12; echo finished')\n"
        "    return host.result(out.stdout.strip())\n")
    on_guest(lab, "h2", "rm -f /tmp/fleet-longrun.pid")
    report_file = tmp_path / "longrun.json"
    run = subprocess.Popen([sys.executable, "-m", "fleet", "run", "longrun", "-i", lab.inventory_dir,
                            "-l", "h2", "--tasks-dir", tasks, "--json", report_file],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the command has started (its shell wrote its pid), and runs on for 12 s
        wait_for(lambda: on_guest(lab, "h2", "cat /tmp/fleet-longrun.pid").exit_status == 0,
                 "the command to start on h2")
        # SIGKILL to the sshd processes of fleet's session (above the command's shell), not to
        # the listener (its parent is init): the connection dies as with sshd killed; h2 stays usable
        killed = on_guest(lab, "h2", "sh=$(cat /tmp/fleet-longrun.pid) || exit 9\n"
                          "up=$(cut -d' ' -f4 /proc/$sh/stat); top=$(cut -d' ' -f4 /proc/$up/stat)\n"
                          "kill -9 $up\n"
                          "[ \"$(cut -d' ' -f4 /proc/$top/stat)\" != 1 ] && kill -9 $top\n"
                          "cat /proc/$up/comm /proc/$top/comm 2>/dev/null; exit 0")
        assert killed.exit_status == 0, killed.stderr
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    import json

    assert run.returncode == 1, out + err
    h2 = hosts_by_name(json.loads(report_file.read_text()))["h2"]
    assert h2["failed"] and h2["error_kind"] == "connection-lost", h2
    assert "lost while a command ran" in h2["error"] and "finished" not in str(h2.get("result")), h2
    assert "connection-lost" in out and "h2  ok" not in out, out
    done = fleet(lab, "run", "setup", "-l", "h2")  # its sshd still listens: a new login works
    assert done.returncode == 0, done.stdout + done.stderr


def test_sshd_stopped_on_one_guest_is_an_unreachable_source_whose_tunnel_still_answers(
        configured, tmp_path):
    lab = configured
    listener = ("for p in $(pidof sshd); do [ \"$(cut -d' ' -f4 /proc/$p/stat)\" = 1 ] && "
                "kill $p; done")
    on_guest(lab, "h4", listener)
    done, report = fleet_json(lab, tmp_path, "run", "mesh", "--count", "2")
    assert done.returncode == 1
    h4 = hosts_by_name(report)["h4"]
    assert h4["state"] == "error" and h4["error_kind"] == "unreachable", h4
    for (src, dst), state in pair_states(report).items():
        assert state == ("error" if src == "h4" else "ok"), (src, dst)


def probing(lab, guests: list[str]) -> bool:
    """True once every named guest runs its probe's pings."""
    found = on_guests(lab, guests, "pidof fping ping")
    return all(done.exit_status == 0 for done in found.values())  # type: ignore[attr-defined]


def test_a_guest_killed_during_a_mesh_fails_that_guest_alone(lab, tmp_path):
    done = fleet(lab, "run", "setup", "-l", "h1,h2,h3")
    assert done.returncode == 0, done.stdout + done.stderr
    report_file = tmp_path / "mesh.json"
    mesh = subprocess.Popen([sys.executable, "-m", "fleet", "run", "mesh", "-i", lab.inventory_dir,
                             "-l", "h1,h2,h3", "--count", "15", "--interval", "0.2",
                             "--command-timeout", "10", "--json", report_file],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: probing(lab, ["h1", "h2", "h3"]) or mesh.poll() is not None,
                 "every source's pings to start")
        assert mesh.poll() is None, "the mesh ended before its pings ran"
        pid = next(g.pid for g in lab.guests if g.name == "h3")
        os.kill(pid, 9)
        out, err = mesh.communicate(timeout=120)
    finally:
        if mesh.poll() is None:
            mesh.kill()
    assert mesh.returncode == 1, out + err
    import json

    report = json.loads(report_file.read_text())
    h3 = hosts_by_name(report)["h3"]
    assert h3["state"] == "error" and h3["error_kind"] in ("timeout", "command"), h3
    for (src, dst), state in pair_states(report).items():
        if src == "h3":
            assert state == "error"
        elif dst == "h3":
            assert state in ("lossy", "unreachable")  # some echoes answered before it died
        else:
            assert state == "ok"
