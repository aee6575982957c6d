"""The guests' QEMU processes: command line, start (daemonized, inside the lab's namespace), files.

Each guest has a directory in the workdir (guests/<name>/) with its host key, its own
initramfs archive, its serial console log and QEMU's PID file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fleet.lab.commands import require_command, run
from fleet.lab.errors import LabError
from fleet.lab.image import GuestImage, write_guest_initrd
from fleet.lab.plan import GuestPlan
from fleet.lab.processes import OwnedProcess, read_pidfile

QEMU_MEMORY_MB = 128  # the minimum: 96 MB fails unpacking the initramfs


@dataclass(frozen=True)
class GuestFiles:
    directory: Path

    @property
    def host_key(self) -> Path:
        return self.directory / "ssh_host_ed25519_key"

    @property
    def overlay(self) -> Path:
        return self.directory / "overlay.cpio.gz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    @property
    def serial_log(self) -> Path:
        return self.directory / "serial.log"

    @property
    def pidfile(self) -> Path:
        return self.directory / "qemu.pid"


def guest_files(workdir: Path, name: str) -> GuestFiles:
    return GuestFiles(workdir / "guests" / name)


def qemu_process(files: GuestFiles, recorded_pid: int | None = None) -> OwnedProcess | None:
    """The guest's QEMU, from its PID file or else the PID recorded earlier.

    Its command line names the PID file: that is the marker that proves the PID is still ours.
    """
    pid = read_pidfile(files.pidfile) or recorded_pid
    return OwnedProcess(pid, str(files.pidfile)) if pid is not None else None


def kernel_command_line(guest: GuestPlan) -> str:
    # no_timer_check: under software emulation with many guests booting at once on few cores, the
    # kernel's IO-APIC timer check times out and panics ("IO-APIC + timer doesn't work!"); the
    # check is pointless on QEMU's emulated PIT, and skipping it is the usual remedy for VMs.
    return (f"console=ttyS0 quiet panic=-1 no_timer_check lab.ip={guest.ipv4} "
            f"lab.name={guest.name}")


def qemu_command(qemu: Path, guest: GuestPlan, image: GuestImage, files: GuestFiles) -> list[str]:
    """QEMU's command line for one guest: software emulation (TCG), PVH boot of vmlinux. Pure."""
    return [
        str(qemu), "-name", guest.name,
        "-accel", "tcg,tb-size=32", "-cpu", "max", "-smp", "1", "-m", str(QEMU_MEMORY_MB),
        "-M", "pc", "-nodefaults", "-display", "none", "-no-reboot",
        "-kernel", str(image.vmlinux), "-initrd", str(files.initrd),
        "-append", kernel_command_line(guest),
        "-netdev", f"tap,id=n0,ifname={guest.tap},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=n0,mac={guest.mac},romfile=",
        "-serial", f"file:{files.serial_log}",
        "-daemonize", "-pidfile", str(files.pidfile),
    ]


def start_guest(netns: str, guest: GuestPlan, image: GuestImage, files: GuestFiles) -> OwnedProcess:
    """Start one guest's QEMU, daemonized, inside `netns`; return it once QEMU has written its PID.

    QEMU reads the initrd at start-up, so the guest's combined initrd (about 10 MB) is deleted
    right after: a big lab does not hold one copy per guest on disk.
    """
    write_guest_initrd(image, files.overlay.read_bytes(), files.initrd)
    try:
        run([require_command("ip"), "netns", "exec", netns,
             *qemu_command(require_command("qemu-system-x86_64"), guest, image, files)],
            what=f"starting QEMU for guest {guest.name}", timeout=60)
    finally:
        files.initrd.unlink(missing_ok=True)
    process = qemu_process(files)
    if process is None:
        raise LabError(f"QEMU for guest {guest.name} started but wrote no PID file {files.pidfile}")
    return process


def serial_tail(files: GuestFiles, lines: int = 15) -> str:
    """The end of a guest's serial console log, for error messages."""
    try:
        text = files.serial_log.read_text(errors="replace")
    except OSError:
        return "(no serial log)"
    return "\n".join(text.splitlines()[-lines:]) or "(serial log empty)"
