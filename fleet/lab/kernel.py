"""The guest kernel: Debian's own linux-image package, fetched with apt-get and unpacked without installing.

Produces, in a cache directory keyed on the kernel version, an uncompressed `vmlinux` (QEMU boots
it directly through its PVH entry: no firmware, no in-guest decompression) and the few modules the
guests need (virtio networking and sit) with their dependencies, in load order, plus depmod's files.
"""

from __future__ import annotations

import lzma
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fleet.lab.commands import require_command, run
from fleet.lab.errors import LabError

META_PACKAGE = "linux-image-amd64"
MODULES = ("virtio_pci", "virtio_mmio", "virtio_net", "sit")  # dependencies are added
XZ_MAGIC = b"\xfd7zXZ\x00"


@dataclass(frozen=True)
class Kernel:
    version: str  # e.g. 6.1.0-56-amd64
    vmlinux: Path
    modules_root: Path  # holds lib/modules/<version>/... (only the needed modules, depmod'ed)
    load_order: tuple[str, ...]  # module paths relative to lib/modules/<version>, in insmod order


def resolve_kernel_package() -> str:
    """The versioned package `linux-image-amd64` depends on, e.g. linux-image-6.1.0-56-amd64."""
    result = run([require_command("apt-cache"), "depends", META_PACKAGE],
                 what=f"finding the kernel package behind {META_PACKAGE}")
    package = parse_kernel_dependency(result.stdout.decode())
    if package is None:
        raise LabError(f"`apt-cache depends {META_PACKAGE}` names no linux-image-* package "
                       "(run apt-get update?)")
    return package


def parse_kernel_dependency(apt_cache_output: str) -> str | None:
    match = re.search(r"Depends:\s*(linux-image-\d\S*)", apt_cache_output)
    return match.group(1) if match else None


def kernel_version_of(package: str) -> str:
    return package.removeprefix("linux-image-")


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF kernel inside a bzImage whose payload is xz-compressed."""
    start = bzimage.find(XZ_MAGIC)
    if start < 0:
        raise LabError("the kernel image holds no xz payload (not a Debian amd64 bzImage?)")
    try:
        elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(bzimage[start:])
    except lzma.LZMAError as exc:
        raise LabError(f"cannot decompress the kernel's xz payload: {exc}") from exc
    if not elf.startswith(b"\x7fELF"):
        raise LabError("the kernel's decompressed payload is not an ELF vmlinux")
    return elf


def parse_show_depends(output: str, root: Path, version: str) -> list[str]:
    """Module paths (relative to lib/modules/<version>) from `modprobe --show-depends` output."""
    base = root / "lib" / "modules" / version
    paths = []
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "insmod":
            paths.append(Path(parts[1]).relative_to(base).as_posix())
    return paths


def _download(package: str, debs: Path) -> Path:
    debs.mkdir(parents=True, exist_ok=True)
    existing = sorted(debs.glob(f"{package}_*.deb"))
    if existing:
        return existing[-1]
    run([require_command("apt-get"), "download", package], cwd=debs, timeout=900,
        what=f"downloading {package} (apt-get download)")
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        raise LabError(f"apt-get download {package} left no .deb in {debs}")
    return found[-1]


def _extract(deb: Path, into: Path, patterns: list[str]) -> None:
    dpkg_deb = require_command("dpkg-deb")
    tar = require_command("tar")
    with subprocess.Popen([str(dpkg_deb), "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as unpack:
        assert unpack.stdout is not None
        result = subprocess.run([str(tar), "-x", "-C", str(into), "--wildcards", *patterns],
                                stdin=unpack.stdout, capture_output=True, check=False)
        unpack.stdout.close()
        unpack_err = unpack.stderr.read() if unpack.stderr else b""
    if unpack.returncode != 0 or result.returncode != 0:
        detail = (unpack_err or result.stderr).decode(errors="replace").strip()
        raise LabError(f"unpacking {deb.name} failed: {detail}")


def build_kernel(package: str, cache: Path, into: Path, progress: Callable[[str], None]) -> Kernel:
    """Fetch `package` (cached in cache/debs) and fill `into` with vmlinux and the needed modules."""
    version = kernel_version_of(package)
    deb = _download(package, cache / "debs")
    progress(f"unpacking {deb.name}")
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=into, prefix="unpack-") as scratch_name:
        scratch = Path(scratch_name)
        _extract(deb, scratch, [f"./boot/vmlinuz-{version}", f"./lib/modules/{version}/*"])
        bzimage = scratch / "boot" / f"vmlinuz-{version}"
        if not bzimage.exists():
            raise LabError(f"{deb.name} holds no boot/vmlinuz-{version}")
        (into / "vmlinux").write_bytes(extract_vmlinux(bzimage.read_bytes()))
        depmod = require_command("depmod")
        run([depmod, "-b", scratch, version], what="depmod on the unpacked kernel modules")
        load_order: list[str] = []
        for module in MODULES:
            shown = run([require_command("modprobe"), "-d", scratch, "-S", version, "--show-depends",
                         module], what=f"resolving the dependencies of kernel module {module}")
            for path in parse_show_depends(shown.stdout.decode(), scratch, version):
                if path not in load_order:
                    load_order.append(path)
        modules_root = into / "modules"
        shutil.rmtree(modules_root, ignore_errors=True)
        source_base = scratch / "lib" / "modules" / version
        target_base = modules_root / "lib" / "modules" / version
        for path in load_order:
            (target_base / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source_base / path, target_base / path)
        for name in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
            if (source_base / name).exists():
                shutil.copy2(source_base / name, target_base / name)
    run([depmod, "-b", modules_root, version], what="depmod on the guest's kernel modules")
    (into / "modules.load").write_text("".join(f"{path}\n" for path in load_order))
    return Kernel(version, into / "vmlinux", modules_root, tuple(load_order))


def load_kernel(into: Path, version: str) -> Kernel | None:
    """A kernel previously built into `into`, or None when that cache entry is incomplete."""
    vmlinux, order = into / "vmlinux", into / "modules.load"
    if not (vmlinux.exists() and order.exists() and (into / "modules").is_dir()):
        return None
    return Kernel(version, vmlinux, into / "modules", tuple(order.read_text().split()))
