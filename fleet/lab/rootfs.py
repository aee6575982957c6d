"""The guests' shared root file system, as cpio entries: busybox for the basics, the machine's own
ip/ping/fping/sshd/dash with their libraries, the kernel modules and the files of guest_files.

Layout is usr-merged (/bin, /sbin, /lib, /lib64 are links into /usr). dash is /bin/sh, because
busybox's sh would run its own built-in ip and ping (which cannot do ISATAP) whatever PATH says;
no busybox link ever takes the name of a real tool, and there is no sudo (root needs none).
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

from fleet.lab import cpio, guest_files
from fleet.lab.commands import find_command, require_command, run
from fleet.lab.errors import LabError
from fleet.lab.kernel import Kernel

# Real tools from the machine: (command, required). Their libraries come along (ldd).
HOST_TOOLS = (("ip", True), ("ping", True), ("fping", False), ("sshd", True), ("dash", True))

# Busybox applets linked into /usr/bin. Deliberately absent: sh, ash, ip, ping, ping6, ifconfig,
# route, arp, sudo-like tools; those are real tools or must not exist.
BUSYBOX_APPLETS = (
    "[", "awk", "base64", "basename", "cat", "chmod", "chown", "clear", "cmp", "cp", "cut", "date",
    "dd", "df", "diff", "dirname", "dmesg", "du", "echo", "env", "expr", "false", "find", "free",
    "grep", "egrep", "fgrep", "gunzip", "gzip", "head", "hexdump", "hostname", "id", "insmod", "kill",
    "less", "ln", "ls", "lsmod", "md5sum", "mkdir", "mkfifo", "mknod", "mktemp", "modinfo", "modprobe",
    "more", "mount", "mv", "nproc", "od", "pidof", "poweroff", "printf", "ps", "pwd", "readlink",
    "realpath", "reboot", "rm", "rmdir", "rmmod", "sed", "seq", "sha256sum", "sleep", "sort", "stat",
    "sync", "sysctl", "tac", "tail", "tar", "tee", "test", "timeout", "top", "touch", "tr", "true",
    "tty", "umount", "uname", "uniq", "uptime", "usleep", "vi", "watch", "wc", "which", "whoami",
    "xargs", "yes", "zcat",
)

_MERGED = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}


def guest_path(host_path: str | Path) -> str:
    """Where a host path lands in the usr-merged guest root, relative: /lib/x/y -> usr/lib/x/y."""
    parts = Path(host_path).parts
    if not parts or parts[0] != "/":
        raise ValueError(f"not an absolute path: {host_path}")
    rest = list(parts[1:])
    if rest and rest[0] in _MERGED:
        rest[0] = _MERGED[rest[0]]
    return "/".join(rest)


def parse_ldd(output: str) -> list[str]:
    """Absolute library paths from ldd output (the vdso, which has no file, is skipped)."""
    return re.findall(r"(?:=>\s*|^\s*)(/\S+)\s+\(0x", output, flags=re.MULTILINE)


class RootBuilder:
    """Collects cpio entries by path; parents are created on demand and always come first."""

    def __init__(self) -> None:
        self._entries: dict[str, cpio.Entry] = {}

    def __contains__(self, path: str) -> bool:
        return path in self._entries

    def directory(self, path: str, perm: int = 0o755) -> None:
        parent = path.rpartition("/")[0]
        if parent and parent not in self._entries:
            self.directory(parent)
        self._entries.setdefault(path, cpio.directory(path, perm))

    def add(self, entry: cpio.Entry) -> None:
        parent = entry.path.rpartition("/")[0]
        if parent:
            self.directory(parent)
        self._entries[entry.path] = entry

    def text(self, path: str, content: str, perm: int = 0o644) -> None:
        self.add(cpio.file(path, content.encode(), perm))

    def host_file(self, host_path: Path, path: str | None = None) -> None:
        """Copy a file of the machine (symlinks followed), keeping its permission bits."""
        target = path or guest_path(host_path)
        resolved = host_path.resolve()
        self.add(cpio.file(target, resolved.read_bytes(), stat.S_IMODE(resolved.stat().st_mode)))

    def entries(self) -> list[cpio.Entry]:
        return list(self._entries.values())


def _add_binary_with_libraries(root: RootBuilder, binary: Path, ldd: Path) -> None:
    root.host_file(binary)
    if not _is_dynamic(binary):
        return
    result = run([ldd, binary], what=f"listing the libraries of {binary}")
    for library in parse_ldd(result.stdout.decode()):
        if guest_path(library) not in root:
            root.host_file(Path(library))


def _is_dynamic(binary: Path) -> bool:
    with binary.open("rb") as handle:
        head = handle.read(4096)
    return b"/ld-linux" in head or b"ld-linux-x86-64" in head


def base_entries(kernel: Kernel) -> list[cpio.Entry]:
    """Every member of the shared base initramfs (per-guest keys come in a second archive)."""
    root = RootBuilder()
    for path in ("usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc/ssh", "etc/lab", "proc", "sys",
                 "dev", "run", "var/log", "var/empty", "mnt", "home"):
        root.directory(path)
    root.directory("root", 0o700)
    root.directory("tmp", 0o1777)
    for link, target in _MERGED.items():
        root.add(cpio.symlink(link, target))
    root.add(cpio.symlink("var/run", "/run"))
    root.add(cpio.symlink("var/tmp", "/tmp"))
    root.add(cpio.char_device("dev/console", 5, 1))
    root.add(cpio.char_device("dev/null", 1, 3, 0o666))

    ldd = require_command("ldd")
    for command, required in HOST_TOOLS:
        found = require_command(command) if required else find_command(command)
        if found is not None:
            _add_binary_with_libraries(root, found.resolve(), ldd)
    root.add(cpio.symlink("usr/bin/sh", "dash"))

    busybox = require_command("busybox").resolve()
    if _is_dynamic(busybox):
        raise LabError(f"{busybox} is dynamically linked: apt-get install busybox-static")
    root.host_file(busybox, "usr/bin/busybox")
    for applet in BUSYBOX_APPLETS:
        path = f"usr/bin/{applet}"
        if path not in root and f"usr/sbin/{applet}" not in root:
            root.add(cpio.symlink(path, "busybox"))

    modules_base = kernel.modules_root / "lib" / "modules" / kernel.version
    for file in sorted(modules_base.rglob("*")):
        if file.is_file():
            root.host_file(file, f"usr/lib/modules/{kernel.version}/{file.relative_to(modules_base)}")
    root.text("etc/lab/modules.load", "".join(f"{path}\n" for path in kernel.load_order))

    root.text("init", guest_files.INIT, 0o755)
    root.text("etc/inittab", guest_files.INITTAB)
    root.text("etc/ssh/sshd_config", guest_files.SSHD_CONFIG)
    root.text("etc/passwd", guest_files.PASSWD)
    root.text("etc/group", guest_files.GROUP)
    root.text("etc/shadow", guest_files.SHADOW, 0o600)
    root.text("etc/nsswitch.conf", guest_files.NSSWITCH)
    root.text("etc/profile", guest_files.PROFILE)
    root.text("etc/protocols", guest_files.PROTOCOLS)
    root.text("etc/hostname", "guest\n")
    root.text("etc/hosts", guest_files.hosts_file([]))
    return root.entries()


def guest_entries(*, host_key: bytes, host_key_pub: bytes, authorized_keys: bytes,
                  hosts: list[tuple[str, str]]) -> list[cpio.Entry]:
    """The per-guest archive laid over the base: its host key, root's authorized_keys, /etc/hosts."""
    root = RootBuilder()
    root.directory("etc/ssh")
    root.directory("root", 0o700)
    root.directory("root/.ssh", 0o700)
    root.add(cpio.file("etc/ssh/ssh_host_ed25519_key", host_key, 0o600))
    root.add(cpio.file("etc/ssh/ssh_host_ed25519_key.pub", host_key_pub, 0o644))
    root.add(cpio.file("root/.ssh/authorized_keys", authorized_keys, 0o600))
    root.text("etc/hosts", guest_files.hosts_file(hosts))
    return root.entries()
