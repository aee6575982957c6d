"""A lab of small QEMU guests whose kernel has sit/ISATAP, for running fleet against real kernels.

    up(hosts, workdir=..., name=...)    build/reuse the image, boot guests, write the inventory
    status(workdir=...)                 the lab in a workdir and the liveness of its processes
    down(workdir=...)                   stop everything, remove namespace and state (keeps the cache)
    stop_guest(name, workdir=...)       kill one guest's QEMU
    reset(workdir=...)                  back as `up` left it: gone guests booted, the rest cleaned
    check_prerequisites()               what this machine lacks, as human messages

Modules: plan (names, addresses), image (cached kernel + initramfs; kernel, rootfs, cpio,
guest_files), network (namespace, bridge, taps), guests (QEMU), boot (start guests and wait for
them), forwarder (127.0.0.1 ports into the lab), readiness (SSH banners), remote (a script on
guests over OpenSSH), keys, inventory, state, processes, lab (the lifecycle), restore (reset).
"""

from fleet.lab.info import GuestInfo, LabInfo
from fleet.lab.lab import down, status, stop_guest, up
from fleet.lab.prerequisites import check_prerequisites
from fleet.lab.restore import reset

__all__ = ["GuestInfo", "LabInfo", "check_prerequisites", "down", "reset", "status", "stop_guest", "up"]
