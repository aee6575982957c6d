"""Booting guests: start their QEMUs and wait until each one's sshd answers through the forwarder.

Used by `up` for every guest and by `reset` for the guests that are gone or silent. Under heavy
emulation load a guest's kernel can die at boot once in a while: such a guest is started once
more, and a second death is an error.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from fleet.lab.errors import LabError
from fleet.lab.forwarder import forwarder_files
from fleet.lab.guests import guest_files, qemu_process, serial_tail, start_guest
from fleet.lab.image import GuestImage
from fleet.lab.plan import GuestPlan
from fleet.lab.processes import OwnedProcess, is_alive
from fleet.lab.readiness import wait_for_banners
from fleet.lab.state import LabState, save_state

Progress = Callable[[str], None]
BOOT_TIMEOUT_BASE = 60.0  # seconds, plus BOOT_TIMEOUT_PER_GUEST per guest: boots are CPU-bound under TCG
BOOT_TIMEOUT_PER_GUEST = 5.0


def with_pid(state: LabState, name: str, pid: int | None) -> LabState:
    return dataclasses.replace(state, guests=tuple(
        dataclasses.replace(record, pid=pid) if record.name == name else record
        for record in state.guests))


def boot_guests(guests: Sequence[GuestPlan], image: GuestImage, workdir: Path, state: LabState,
                say: Progress) -> LabState:
    """Start `guests` in the lab's namespace and return the state (saved) once every one of them
    gives an SSH banner on its forwarded port; LabError when one dies twice, stays silent, or
    the forwarder dies."""
    ports = {record.name: record.ssh_port for record in state.guests
             if record.name in {guest.name for guest in guests}}
    say(f"booting {len(guests)} guest(s)")
    boot_started = time.monotonic()
    for guest in guests:
        files = guest_files(workdir, guest.name)
        files.pidfile.unlink(missing_ok=True)  # a killed QEMU leaves its PID file behind
        state = with_pid(state, guest.name, start_guest(state.netns, guest, image, files).pid)
        save_state(workdir, state)
    ready: set[str] = set()
    fwd_files = forwarder_files(workdir)
    forwarder = OwnedProcess(state.forwarder_pid or 0, str(fwd_files.config))

    def on_ready(name: str) -> None:
        ready.add(name)
        say(f"{name} ready ({time.monotonic() - boot_started:.1f} s)")

    retried: dict[str, str] = {}  # guest -> the end of its console when it died the first time

    def check() -> None:
        nonlocal state
        if not is_alive(forwarder):
            raise LabError(f"the port forwarder (PID {state.forwarder_pid}) died: "
                           f"{fwd_files.log.read_text(errors='replace').strip()[-2000:]}")
        for guest in guests:
            files = guest_files(workdir, guest.name)
            process = qemu_process(files)
            if guest.name in ready or (process is not None and is_alive(process)):
                continue
            tail = serial_tail(files)
            if guest.name in retried:
                raise LabError(f"guest {guest.name}'s QEMU exited while booting, twice; its serial "
                               f"console ends with:\n{tail}\n(the first time:\n"
                               f"{retried[guest.name]})")
            last = tail.splitlines()[-1] if tail.strip() else "no console output"
            say(f"{guest.name}'s QEMU exited while booting ({last}); starting it once more")
            retried[guest.name] = tail
            files.pidfile.unlink(missing_ok=True)
            state = with_pid(state, guest.name, start_guest(state.netns, guest, image, files).pid)
            save_state(workdir, state)

    timeout = BOOT_TIMEOUT_BASE + BOOT_TIMEOUT_PER_GUEST * len(guests)
    silent = wait_for_banners(ports, timeout=timeout, on_ready=on_ready, check=check)
    if silent:
        first = silent[0]
        raise LabError(f"{len(silent)} guest(s) gave no SSH banner within {timeout:.0f} s: "
                       f"{', '.join(silent)}; {first}'s serial console ends with:\n"
                       f"{serial_tail(guest_files(workdir, first))}")
    return state
