"""Tests of fleet.lab's pure parts: the initramfs archive, the plan, the commands, the guest
files and the generated inventory (the lab itself boots in tests/lab/test_lab.py)."""

from __future__ import annotations

import gzip
import ipaddress
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import load_yaml

from fleet.lab import (
    cpio,
    guest_files,
    inventory,
    kernel,
    network,
    plan,
    remote,
    restore,
    rootfs,
)
from fleet.lab.errors import LabError
from fleet.lab.guests import GuestFiles, qemu_command
from fleet.lab.image import GuestImage

# ---- pure parts ---------------------------------------------------------------------------------


def test_cpio_round_trip_keeps_every_field() -> None:
    entries = [
        cpio.directory("etc"),
        cpio.file("etc/hello", b"hello\n", 0o600),
        cpio.file("etc/empty", b""),
        cpio.file("etc/odd", b"12345"),  # data length not a multiple of 4
        cpio.symlink("bin", "usr/bin"),
        cpio.char_device("dev/console", 5, 1),
        cpio.directory("tmp", 0o1777),
    ]
    assert cpio.read_newc(cpio.write_newc(entries)) == entries


def test_cpio_gz_is_readable_by_gnu_cpio(tmp_path: Path) -> None:
    if shutil.which("cpio") is None:
        pytest.skip("GNU cpio not installed (apt-get install cpio)")
    archive = cpio.write_newc_gz([cpio.directory("a"), cpio.file("a/b", b"data", 0o755),
                                  cpio.symlink("a/c", "b")])
    listing = subprocess.run(["cpio", "-it", "--quiet"], input=gzip.decompress(archive),
                             capture_output=True, check=True).stdout.decode().split()
    assert listing == ["a", "a/b", "a/c"]
    subprocess.run(["cpio", "-id", "--quiet"], input=gzip.decompress(archive), cwd=tmp_path,
                   check=True)
    assert (tmp_path / "a" / "b").read_bytes() == b"data"
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o755
    assert os.readlink(tmp_path / "a" / "c") == "b"


def test_cpio_rejects_absolute_paths() -> None:
    with pytest.raises(ValueError, match="relative"):
        cpio.write_newc([cpio.file("/etc/passwd", b"")])


def test_plan_addresses_names_and_macs() -> None:
    layout = plan.plan_lab(3, "ci-1")
    assert layout.netns == "fleet-ci-1"
    assert [guest.name for guest in layout.guests] == ["h1", "h2", "h3"]
    assert [guest.ipv4 for guest in layout.guests] == [
        ipaddress.IPv4Interface("172.31.0.11/24"), ipaddress.IPv4Interface("172.31.0.12/24"),
        ipaddress.IPv4Interface("172.31.0.13/24")]
    assert layout.guests[0].mac == "52:54:00:ac:1f:0b"
    assert len({guest.mac for guest in plan.plan_lab(plan.MAX_HOSTS, "x").guests}) == plan.MAX_HOSTS
    assert all(guest.ipv4 in plan.SUBNET for guest in plan.plan_lab(plan.MAX_HOSTS, "x").guests)


@pytest.mark.parametrize("hosts", [0, -1, plan.MAX_HOSTS + 1, True, 2.0])
def test_plan_rejects_bad_counts(hosts: object) -> None:
    with pytest.raises(LabError, match="hosts"):
        plan.plan_lab(hosts, "lab")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "Lab", "a b", "-x", "x" * 33, "a/b"])
def test_plan_rejects_bad_names(name: str) -> None:
    with pytest.raises(LabError, match="lab name"):
        plan.plan_lab(1, name)


def test_network_commands_build_bridge_then_taps() -> None:
    lines = network.network_commands(plan.plan_lab(2, "lab"))
    assert lines[:4] == ["link set lo up", "link add br0 type bridge",
                         "addr add 172.31.0.1/24 dev br0", "link set br0 up"]
    assert "tuntap add dev tap2 mode tap" in lines and "link set tap2 master br0" in lines


def test_qemu_command_uses_tcg_and_the_guest_plan(tmp_path: Path) -> None:
    guest = plan.plan_lab(1, "lab").guests[0]
    image = GuestImage("6.1.0-1-amd64", tmp_path / "vmlinux", tmp_path / "base.cpio.gz")
    command = qemu_command(Path("/usr/bin/qemu-system-x86_64"), guest, image, GuestFiles(tmp_path / "h1"))
    assert command[command.index("-accel") + 1].startswith("tcg")
    assert "kvm" not in " ".join(command)
    assert "lab.ip=172.31.0.11/24 lab.name=h1" in command[command.index("-append") + 1]
    # many guests booting at once on 2 cores: the IO-APIC timer check would panic some of them
    assert "no_timer_check" in command[command.index("-append") + 1].split()
    assert f"tap,id=n0,ifname={guest.tap},script=no,downscript=no" in command
    assert command[command.index("-pidfile") + 1] == str(tmp_path / "h1" / "qemu.pid")


def test_kernel_package_and_module_parsing(tmp_path: Path) -> None:
    assert kernel.parse_kernel_dependency(
        "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n") == "linux-image-6.1.0-56-amd64"
    assert kernel.parse_kernel_dependency("linux-image-amd64\n") is None
    base = tmp_path / "lib" / "modules" / "6.1.0-56-amd64"
    shown = (f"insmod {base}/kernel/net/ipv4/ip_tunnel.ko \n"
             f"insmod {base}/kernel/net/ipv4/tunnel4.ko \n"
             f"insmod {base}/kernel/net/ipv6/sit.ko \n")
    assert kernel.parse_show_depends(shown, tmp_path, "6.1.0-56-amd64") == [
        "kernel/net/ipv4/ip_tunnel.ko", "kernel/net/ipv4/tunnel4.ko", "kernel/net/ipv6/sit.ko"]


def test_vmlinux_is_found_after_the_bzimage_header() -> None:
    import lzma
    elf = b"\x7fELF" + bytes(range(256)) * 10
    bzimage = b"MZ setup code" + lzma.compress(elf, format=lzma.FORMAT_XZ) + b"\0\0\0\0trailer"
    assert kernel.extract_vmlinux(bzimage) == elf
    with pytest.raises(LabError, match="xz"):
        kernel.extract_vmlinux(b"MZ no payload")


def test_rootfs_paths_and_ldd_parsing() -> None:
    assert rootfs.guest_path("/lib/x86_64-linux-gnu/libc.so.6") == "usr/lib/x86_64-linux-gnu/libc.so.6"
    assert rootfs.guest_path("/lib64/ld-linux-x86-64.so.2") == "usr/lib64/ld-linux-x86-64.so.2"
    assert rootfs.guest_path("/usr/sbin/sshd") == "usr/sbin/sshd"
    output = ("\tlinux-vdso.so.1 (0x00007ffd)\n"
              "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f28)\n"
              "\t/lib64/ld-linux-x86-64.so.2 (0x00007f28)\n")
    assert rootfs.parse_ldd(output) == ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"]


def test_busybox_never_shadows_the_real_tools() -> None:
    assert not {"sh", "ash", "ip", "ping", "ping6", "sudo"} & set(rootfs.BUSYBOX_APPLETS)
    assert {"mktemp", "cat", "sleep", "kill", "rm"} <= set(rootfs.BUSYBOX_APPLETS)


def test_guest_overlay_carries_keys_with_strict_modes() -> None:
    entries = {entry.path: entry for entry in rootfs.guest_entries(
        host_key=b"PRIVATE", host_key_pub=b"ssh-ed25519 AAAA h1\n", authorized_keys=b"ssh-ed25519 BBBB\n",
        hosts=[("h1", "172.31.0.11")])}
    assert stat.S_IMODE(entries["etc/ssh/ssh_host_ed25519_key"].mode) == 0o600
    assert stat.S_IMODE(entries["root/.ssh"].mode) == 0o700
    assert entries["root/.ssh/authorized_keys"].data == b"ssh-ed25519 BBBB\n"
    assert b"172.31.0.11 h1" in entries["etc/hosts"].data
    assert list(entries).index("root") < list(entries).index("root/.ssh")


def test_sshd_config_is_key_only() -> None:
    config = dict(line.split(None, 1) for line in guest_files.SSHD_CONFIG.splitlines()
                  if line and not line.startswith("#"))
    assert config["PasswordAuthentication"] == "no"
    assert config["UsePAM"] == "no"
    assert config["PermitRootLogin"] == "prohibit-password"


def test_inventory_is_nornir_simple_inventory(tmp_path: Path) -> None:
    hosts = [inventory.InventoryHost("h1", 40001, "172.31.0.11", "ssh-ed25519 AAAA root@h1"),
             inventory.InventoryHost("h2", 40002, "172.31.0.12", "ssh-ed25519 BBBB root@h2")]
    inventory.write_inventory(tmp_path, "lab", hosts, tmp_path / "id_ed25519")
    loaded_hosts = load_yaml(tmp_path / "hosts.yaml")
    assert loaded_hosts["h2"] == {"hostname": "127.0.0.1", "port": 40002, "groups": ["lab"],
                                  "data": {"ipv4": "172.31.0.12"}}
    defaults = load_yaml(tmp_path / "defaults.yaml")
    assert defaults["username"] == "root"
    assert defaults["data"]["isatap_prefix"] == "fd00:5efe:1ab::/64"
    extras = defaults["connection_options"]["asyncssh"]["extras"]
    assert extras == {"client_keys": [str(tmp_path / "id_ed25519")],
                      "known_hosts": str(tmp_path / "known_hosts")}
    assert "lab" in load_yaml(tmp_path / "groups.yaml")
    assert (tmp_path / "known_hosts").read_text().splitlines() == [
        "[127.0.0.1]:40001 ssh-ed25519 AAAA", "[127.0.0.1]:40002 ssh-ed25519 BBBB"]
    header = (tmp_path / "hosts.yaml").read_text().splitlines()[0]
    assert header.startswith("# Hosts of lab 'lab': generated by `fleet lab up`")


def test_reset_puts_taps_back_on_the_bridge_at_their_mtu() -> None:
    lines = restore.link_reset_commands(plan.plan_lab(2, "lab"))
    assert lines == ["link set tap1 mtu 1500", "link set tap1 master br0", "link set tap1 up",
                     "link set tap2 mtu 1500", "link set tap2 master br0", "link set tap2 up",
                     "link set br0 up"]


def test_reset_removes_added_qdiscs_and_keeps_the_kernels_defaults() -> None:
    # `tc -j qdisc show` of a namespace where a test added a tbf and an ingress qdisc
    shown = [{"kind": "noqueue", "handle": "0:", "dev": "br0", "root": True},
             {"kind": "pfifo_fast", "handle": "0:", "dev": "tap1", "root": True},
             {"kind": "tbf", "handle": "8001:", "dev": "tap2", "root": True},
             {"kind": "ingress", "handle": "ffff:", "dev": "tap2", "parent": "ffff:fff1"},
             {"kind": "clsact", "handle": "ffff:", "dev": "tap3", "parent": "ffff:fff1"}]
    assert restore.qdisc_deletions(shown) == [
        "qdisc del dev tap2 root", "qdisc del dev tap2 ingress", "qdisc del dev tap3 clsact"]
    assert restore.qdisc_deletions([]) == []


def test_the_guest_reset_script_is_valid_shell_and_spares_its_own_session() -> None:
    dash = shutil.which("dash") or "/bin/sh"
    checked = subprocess.run([dash, "-n"], input=restore.GUEST_RESET, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    # the session's ancestors and sshd's listener are kept; kernel threads (no exe) skipped
    assert 'keep=" 1 $(cat /run/sshd.pid' in restore.GUEST_RESET and '"$dir/exe"' in restore.GUEST_RESET


def test_ssh_command_checks_host_keys_and_reads_nothing_of_the_users() -> None:
    argv = remote.ssh_command(Path("/usr/bin/ssh"), 40001, client_key=Path("/lab/keys/id"),
                              known_hosts=Path("/lab/inventory/known_hosts"))
    assert argv[:3] == ["/usr/bin/ssh", "-F", "/dev/null"] and argv[-2:] == ["root@127.0.0.1", "sh -s"]
    options = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-o"]
    assert {"BatchMode=yes", "StrictHostKeyChecking=yes", "IdentitiesOnly=yes",
            "UserKnownHostsFile=/lab/inventory/known_hosts"} <= set(options)
    assert argv[argv.index("-p") + 1] == "40001" and argv[argv.index("-i") + 1] == "/lab/keys/id"
    assert remote.RemoteResult(0, "").reached and not remote.RemoteResult(255, "refused").reached
