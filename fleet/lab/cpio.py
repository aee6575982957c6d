"""The cpio "newc" archive format, as the Linux kernel unpacks it into an initramfs.

Pure: entries in, bytes out (and back, for tests and inspection). Several gzip'ed archives
concatenated are one initramfs to the kernel; the lab uses that to add a small per-guest
archive after the shared base one.
"""

from __future__ import annotations

import gzip
import stat
from collections.abc import Iterable
from dataclasses import dataclass

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
_HEADER_LEN = 110


@dataclass(frozen=True)
class Entry:
    """One archive member. `path` is relative to the archive root, without a leading slash."""

    path: str
    mode: int  # full st_mode: file type bits and permissions
    data: bytes = b""  # file contents, or a symlink's target
    rdev_major: int = 0
    rdev_minor: int = 0
    uid: int = 0
    gid: int = 0
    mtime: int = 0


def directory(path: str, perm: int = 0o755) -> Entry:
    return Entry(path, stat.S_IFDIR | perm)


def file(path: str, data: bytes, perm: int = 0o644) -> Entry:
    return Entry(path, stat.S_IFREG | perm, data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def char_device(path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    return Entry(path, stat.S_IFCHR | perm, rdev_major=major, rdev_minor=minor)


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _member(ino: int, entry: Entry, nlink: int) -> bytes:
    name = entry.path.encode() + b"\0"
    fields = (ino, entry.mode, entry.uid, entry.gid, nlink, entry.mtime, len(entry.data),
              0, 0, entry.rdev_major, entry.rdev_minor, len(name), 0)
    header = MAGIC + b"".join(b"%08X" % value for value in fields)
    return header + name + _pad4(_HEADER_LEN + len(name)) + entry.data + _pad4(len(entry.data))


def write_newc(entries: Iterable[Entry]) -> bytes:
    """The uncompressed archive, members in the order given (parents must come before children)."""
    chunks = []
    for ino, entry in enumerate(entries, start=1):
        if entry.path.startswith("/") or not entry.path:
            raise ValueError(f"cpio member path must be relative and non-empty: {entry.path!r}")
        if stat.S_ISDIR(entry.mode) and entry.data:
            raise ValueError(f"cpio directory {entry.path!r} cannot carry data")
        chunks.append(_member(ino, entry, 2 if stat.S_ISDIR(entry.mode) else 1))
    chunks.append(_member(0, Entry(TRAILER, 0), 1))
    return b"".join(chunks)


def write_newc_gz(entries: Iterable[Entry]) -> bytes:
    """The archive gzip'ed at level 1 (fast; the kernel unpacks it quickly), reproducibly (mtime 0)."""
    return gzip.compress(write_newc(entries), compresslevel=1, mtime=0)


def read_newc(archive: bytes) -> list[Entry]:
    """The members of one uncompressed newc archive, up to its trailer."""
    entries: list[Entry] = []
    offset = 0
    while True:
        header = archive[offset:offset + _HEADER_LEN]
        if len(header) < _HEADER_LEN or header[:6] != MAGIC:
            raise ValueError(f"not a newc cpio header at offset {offset}")
        fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        _, mode, uid, gid, _, mtime, filesize, _, _, rmajor, rminor, namesize, _ = fields
        name_start = offset + _HEADER_LEN
        name = archive[name_start:name_start + namesize - 1].decode()
        data_start = name_start + namesize + len(_pad4(_HEADER_LEN + namesize))
        data = archive[data_start:data_start + filesize]
        offset = data_start + filesize + len(_pad4(filesize))
        if name == TRAILER:
            return entries
        entries.append(Entry(name, mode, data, rmajor, rminor, uid, gid, mtime))
