"""The guest image (kernel + base initramfs), built once and cached; and each guest's initrd.

Cache: $FLEET_LAB_CACHE, else ~/.cache/fleet/lab. It holds the kernel .deb (debs/), and one
directory per kernel version and recipe version with vmlinux, the modules and the base
initramfs, the latter keyed also on a fingerprint of the machine's tools it copies (an upgraded
sshd gives a new base). A lock file serializes concurrent builders.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fleet.lab import cpio, guest_files, rootfs
from fleet.lab.commands import find_command
from fleet.lab.errors import LabError
from fleet.lab.kernel import build_kernel, kernel_version_of, load_kernel, resolve_kernel_package

RECIPE_VERSION = 1  # bump when the kernel/modules recipe or the initramfs layout changes


@dataclass(frozen=True)
class GuestImage:
    kernel_version: str
    vmlinux: Path
    base_initramfs: Path  # gzip'ed newc cpio shared by every guest


def cache_dir() -> Path:
    configured = os.environ.get("FLEET_LAB_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "fleet" / "lab"


@contextmanager
def _locked(cache: Path) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def host_fingerprint() -> str:
    """Changes when a tool copied from this machine, or the guest's own files, change."""
    digest = hashlib.sha256()
    commands = [command for command, _ in rootfs.HOST_TOOLS] + ["busybox", "ldd"]
    for command in commands:
        found = find_command(command)
        if found is not None:
            real = found.resolve()
            info = real.stat()
            digest.update(f"{command}={real}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    for text in (guest_files.INIT, guest_files.INITTAB, guest_files.SSHD_CONFIG, guest_files.PASSWD,
                 guest_files.GROUP, guest_files.SHADOW, guest_files.NSSWITCH, guest_files.PROFILE,
                 guest_files.PROTOCOLS,
                 " ".join(rootfs.BUSYBOX_APPLETS)):
        digest.update(text.encode())
    return digest.hexdigest()[:12]


def _write_atomically(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)


def build_image(progress: Callable[[str], None]) -> GuestImage:
    """The cached guest image, building whatever part of it is missing."""
    cache = cache_dir()
    package = resolve_kernel_package()
    version = kernel_version_of(package)
    with _locked(cache):
        kernel_dir = cache / f"kernel-{version}-r{RECIPE_VERSION}"
        kernel = load_kernel(kernel_dir, version)
        built = False
        if kernel is None:
            started = time.monotonic()
            progress(f"building guest kernel {version} (first time: downloads {package})")
            building = Path(tempfile.mkdtemp(dir=cache, prefix=f".{kernel_dir.name}."))
            try:
                build_kernel(package, cache, building, progress)
                shutil.rmtree(kernel_dir, ignore_errors=True)
                os.replace(building, kernel_dir)
            finally:
                shutil.rmtree(building, ignore_errors=True)
            kernel = load_kernel(kernel_dir, version)
            if kernel is None:
                raise LabError(f"the guest kernel build in {kernel_dir} is incomplete")
            progress(f"guest kernel ready ({time.monotonic() - started:.1f} s)")
            built = True
        base = kernel_dir / f"initramfs-{host_fingerprint()}.cpio.gz"
        if not base.exists():
            started = time.monotonic()
            progress("building guest initramfs")
            _write_atomically(base, cpio.write_newc_gz(rootfs.base_entries(kernel)))
            for stale in kernel_dir.glob("initramfs-*.cpio.gz"):
                if stale != base:
                    stale.unlink(missing_ok=True)
            progress(f"guest initramfs ready: {base.stat().st_size / 1e6:.1f} MB "
                     f"({time.monotonic() - started:.1f} s)")
            built = True
        if not built:
            progress(f"building guest image (cached: kernel {version})")
    return GuestImage(version, kernel.vmlinux, base)


def write_guest_initrd(image: GuestImage, overlay: bytes, path: Path) -> None:
    """The base initramfs followed by one guest's own archive: the kernel unpacks both, in order."""
    with open(path, "wb") as out, open(image.base_initramfs, "rb") as base:
        shutil.copyfileobj(base, out, 1 << 20)
        out.write(overlay)
