"""Tests of fleet.lab: fast pure tests of its parts, and one real lab of 2 QEMU guests.

The lab tests need root and the packages that check_prerequisites() names; without them they
skip and say why. They share one lab (module fixture) that is torn down in the fixture's
finalizer, also when a test fails or the run is interrupted.
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import json
import os
import shutil
import socket
import stat
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from fleet.lab import (
    LabInfo,
    check_prerequisites,
    cpio,
    down,
    forwarder,
    guest_files,
    inventory,
    kernel,
    network,
    plan,
    readiness,
    rootfs,
    status,
    stop_guest,
    up,
)
from fleet.lab.errors import LabError
from fleet.lab.guests import GuestFiles, qemu_command
from fleet.lab.image import GuestImage


def _yaml(path: Path) -> Any:
    """Load YAML the way nornir does (ruamel.yaml, safe)."""
    return YAML(typ="safe").load(path.read_text())


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
    loaded_hosts = _yaml(tmp_path / "hosts.yaml")
    assert loaded_hosts["h2"] == {"hostname": "127.0.0.1", "port": 40002, "groups": ["lab"],
                                  "data": {"ipv4": "172.31.0.12"}}
    defaults = _yaml(tmp_path / "defaults.yaml")
    assert defaults["username"] == "root"
    assert defaults["data"]["isatap_prefix"] == "fd00:5efe:1ab::/64"
    extras = defaults["connection_options"]["asyncssh"]["extras"]
    assert extras == {"client_keys": [str(tmp_path / "id_ed25519")],
                      "known_hosts": str(tmp_path / "known_hosts")}
    assert "lab" in _yaml(tmp_path / "groups.yaml")
    assert (tmp_path / "known_hosts").read_text().splitlines() == [
        "[127.0.0.1]:40001 ssh-ed25519 AAAA", "[127.0.0.1]:40002 ssh-ed25519 BBBB"]
    header = (tmp_path / "hosts.yaml").read_text().splitlines()[0]
    assert header.startswith("# Hosts of lab 'lab': generated by `fleet lab up`")


def test_forwarder_relays_both_ways_and_closes_when_the_target_is_gone() -> None:
    async def scenario() -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"SSH-2.0-echo\r\n")
            while data := await reader.read(1024):
                writer.write(data.upper())
            writer.close()

        target = await asyncio.start_server(echo, "127.0.0.1", 0)
        target_port = target.sockets[0].getsockname()[1]
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        dead_port = dead.getsockname()[1]
        dead.close()  # nothing listens there
        listeners = {"h1": forwarder.listen_on_loopback(), "h2": forwarder.listen_on_loopback()}
        ports = {name: sock.getsockname()[1] for name, sock in listeners.items()}
        serving = asyncio.create_task(forwarder.serve(
            listeners, {"h1": ("127.0.0.1", target_port), "h2": ("127.0.0.1", dead_port)}, None))
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", ports["h1"])
        assert await reader.readline() == b"SSH-2.0-echo\r\n"
        writer.write(b"ping")
        await writer.drain()
        assert await reader.readexactly(4) == b"PING"
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", ports["h2"])
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        serving.cancel()
        target.close()

    asyncio.run(scenario())


def test_wait_for_banners_reports_who_stayed_silent() -> None:
    answering = socket.create_server(("127.0.0.1", 0))
    refusing = socket.create_server(("127.0.0.1", 0))
    refusing_port = refusing.getsockname()[1]
    refusing.close()  # connections there are refused: retried until the timeout
    ready: list[str] = []

    def serve_banner() -> None:
        connection, _ = answering.accept()
        connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        connection.close()


    thread = threading.Thread(target=serve_banner)
    thread.start()
    try:
        silent = readiness.wait_for_banners(
            {"h1": answering.getsockname()[1], "h2": refusing_port}, timeout=1.5, on_ready=ready.append)
    finally:
        thread.join(5)
        answering.close()
    assert (ready, silent) == (["h1"], ["h2"])


# ---- a real lab -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabInfo]:
    problems = check_prerequisites()
    if problems:
        pytest.skip("the lab cannot run here: " + "; ".join(problems))
    workdir = tmp_path_factory.mktemp("lab")
    try:
        yield up(2, workdir=workdir, name=f"t{uuid.uuid4().hex[:8]}", progress=print)
    finally:
        down(workdir=workdir)


def _ssh_options(info: LabInfo) -> dict[str, object]:
    defaults = _yaml(info.inventory_dir / "defaults.yaml")
    extras = defaults["connection_options"]["asyncssh"]["extras"]
    return {"username": defaults["username"], "client_keys": extras["client_keys"],
            "known_hosts": extras["known_hosts"]}


def _port(info: LabInfo, guest: str) -> int:
    return int(_yaml(info.inventory_dir / "hosts.yaml")[guest]["port"])


async def _run(info: LabInfo, guest: str, command: str, timeout: float = 30) -> tuple[int, str]:
    import asyncssh

    async with asyncssh.connect("127.0.0.1", _port(info, guest), connect_timeout=timeout,
                                **_ssh_options(info)) as connection:
        result = await connection.run(command, timeout=timeout)
        exit_status: int = result.exit_status or 0
        return exit_status, str(result.stdout) + str(result.stderr)


def test_lab_is_up_and_described(lab: LabInfo) -> None:
    info = status(workdir=lab.workdir)
    assert info is not None and info == lab
    assert [guest.name for guest in info.guests] == ["h1", "h2"]
    assert all(guest.running and guest.pid and guest.ssh_port for guest in info.guests)
    assert info.forwarder_pid is not None
    assert network.namespace_exists(info.netns)
    hosts = _yaml(info.inventory_dir / "hosts.yaml")
    assert {name: host["data"]["ipv4"] for name, host in hosts.items()} == {
        "h1": "172.31.0.11", "h2": "172.31.0.12"}


def test_up_refuses_a_namespace_it_did_not_create(lab: LabInfo, tmp_path: Path) -> None:
    name = f"t{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", f"fleet-{name}"], check=True)
    try:
        with pytest.raises(LabError, match="already exists"):
            up(1, workdir=tmp_path, name=name)
        assert not (tmp_path / "lab.json").exists()
        assert network.namespace_exists(f"fleet-{name}")  # not ours: left alone
    finally:
        subprocess.run(["ip", "netns", "delete", f"fleet-{name}"], check=True)


def test_second_up_in_the_same_workdir_is_refused(lab: LabInfo) -> None:
    with pytest.raises(LabError, match="already up"):
        up(1, workdir=lab.workdir, name="other")


def test_guests_answer_with_checked_host_keys_and_run_isatap(lab: LabInfo) -> None:
    setup = ("ip tunnel add sit1 mode isatap local {v4} && "
             "ip addr add fd00:5efe:1ab::5efe:{hex}/64 dev sit1 && ip link set sit1 up && "
             "ip -j -d link show dev sit1")

    def isatap_hex(address: str) -> str:
        packed = ipaddress.IPv4Address(address).packed
        return f"{packed[0] << 8 | packed[1]:x}:{packed[2] << 8 | packed[3]:x}"

    async def scenario() -> None:
        for guest in lab.guests:
            code, out = await _run(lab, guest.name,
                                   "uname -r; hostname; test ! -e /usr/bin/sudo && echo nosudo")
            release, hostname, sudo = out.split()
            assert code == 0 and release.endswith("-amd64") and (hostname, sudo) == (guest.name, "nosudo")
            code, out = await _run(lab, guest.name, setup.format(v4=guest.ipv4, hex=isatap_hex(guest.ipv4)))
            assert code == 0, out
            link = json.loads(out)[0]
            assert link["linkinfo"]["info_kind"] == "sit"
            assert link["linkinfo"]["info_data"]["isatap"] is True
            assert link["linkinfo"]["info_data"]["local"] == guest.ipv4
        peer = f"fd00:5efe:1ab::5efe:{isatap_hex(lab.guests[1].ipv4)}"
        code, out = await _run(lab, "h1", f"ping -6 -c 2 -W 5 {peer}")
        assert code == 0, out

    asyncio.run(scenario())


def test_a_wrong_host_key_is_rejected(lab: LabInfo, tmp_path: Path) -> None:
    import asyncssh

    lines = (Path(str(_ssh_options(lab)["known_hosts"]))).read_text().splitlines()
    swapped = tmp_path / "known_hosts"  # h1's port paired with h2's key
    swapped.write_text(f"{lines[0].split()[0]} {' '.join(lines[1].split()[1:])}\n")
    options = {**_ssh_options(lab), "known_hosts": str(swapped)}

    async def scenario() -> None:
        with pytest.raises(asyncssh.HostKeyNotVerifiable):
            async with asyncssh.connect("127.0.0.1", _port(lab, "h1"), **options):
                pass

    asyncio.run(scenario())


def test_stop_guest_leaves_the_other_answering(lab: LabInfo) -> None:
    import asyncssh

    stop_guest("h2", workdir=lab.workdir)
    info = status(workdir=lab.workdir)
    assert info is not None
    assert [(guest.name, guest.running) for guest in info.guests] == [("h1", True), ("h2", False)]

    async def scenario() -> None:
        assert (await _run(lab, "h1", "echo alive"))[1].strip() == "alive"
        with pytest.raises((OSError, asyncssh.Error, asyncio.TimeoutError)):
            await _run(lab, "h2", "true", timeout=3)

    asyncio.run(scenario())
    with pytest.raises(LabError, match="no guest"):
        stop_guest("h9", workdir=lab.workdir)


def test_down_leaves_nothing_behind(lab: LabInfo) -> None:
    pids = [guest.pid for guest in lab.guests] + [lab.forwarder_pid]
    down(workdir=lab.workdir)
    assert status(workdir=lab.workdir) is None
    assert not network.namespace_exists(lab.netns)
    for pid in pids:
        assert pid is not None
        cmdline = Path(f"/proc/{pid}/cmdline")
        assert not cmdline.exists() or str(lab.workdir) not in cmdline.read_bytes().decode(errors="replace")
    assert sorted(path.name for path in lab.workdir.iterdir()) == []
    down(workdir=lab.workdir)  # idempotent


def test_a_guest_that_dies_while_booting_is_started_once_more(tmp_path: Path) -> None:
    problems = ["needs root"] if os.geteuid() != 0 else check_prerequisites()
    if problems:
        pytest.skip("the lab cannot run here: " + "; ".join(problems))
    said: list[str] = []
    pidfile = tmp_path / "lab" / "guests" / "h2" / "qemu.pid"
    killed: list[int] = []

    def kill_h2_once_it_starts() -> None:
        # the kernel panic under load, played by a kill while h2 boots (its QEMU is ours)
        for _ in range(600):
            try:
                pid = int(pidfile.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                threading.Event().wait(0.05)
                continue
            threading.Event().wait(1.0)  # QEMU has daemonized; the kernel is booting (>3 s)
            os.kill(pid, 9)
            killed.append(pid)
            return

    def progress(line: str) -> None:
        said.append(line)
        if line.startswith("booting"):
            threading.Thread(target=kill_h2_once_it_starts, daemon=True).start()

    workdir = tmp_path / "lab"
    try:
        info = up(2, workdir=workdir, name=f"r{uuid.uuid4().hex[:8]}", progress=progress)
        assert killed, "the test never found h2's QEMU to kill"
        assert any(line.startswith("h2's QEMU exited while booting") and "once more" in line
                   for line in said), said
        assert all(g.running for g in info.guests)
        assert next(g.pid for g in info.guests if g.name == "h2") != killed[0]
    finally:
        down(workdir=workdir)
