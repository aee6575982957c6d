"""The lab's lifecycle: up, status, down, stop_guest. Orchestration only; each step lives in its module."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

from fleet.lab import cpio, network, rootfs
from fleet.lab.boot import Progress, boot_guests
from fleet.lab.errors import LabError
from fleet.lab.forwarder import forwarder_files, start_forwarder
from fleet.lab.guests import guest_files, qemu_process
from fleet.lab.image import GuestImage, build_image
from fleet.lab.info import GuestInfo, LabInfo
from fleet.lab.inventory import InventoryHost, write_inventory
from fleet.lab.keys import generate_ed25519
from fleet.lab.plan import LabPlan, plan_lab
from fleet.lab.prerequisites import check_prerequisites
from fleet.lab.processes import OwnedProcess, is_alive, read_pidfile, stop
from fleet.lab.state import OWNED_ENTRIES, GuestRecord, LabState, claim, load_state, save_state


def _quiet(_message: str) -> None:
    pass


def _workdir(workdir: Path) -> Path:
    return Path(workdir).expanduser().resolve()


def inventory_dir(workdir: Path) -> Path:
    return _workdir(workdir) / "inventory"


def client_key_path(workdir: Path) -> Path:
    return _workdir(workdir) / "keys" / "id_ed25519"


def up(hosts: int = 4, *, workdir: Path, name: str = "lab", progress: Progress | None = None) -> LabInfo:
    """Build (or reuse) the guest image, start `hosts` guests and the forwarder, write the inventory.

    Returns once every guest's sshd answers through the forwarder. On any failure (Ctrl-C
    included) everything this call started is torn down before the error propagates.
    """
    say = progress or _quiet
    plan = plan_lab(hosts, name)
    workdir = _workdir(workdir)
    problems = check_prerequisites()
    if problems:
        raise LabError("the lab cannot run on this machine: " + "; ".join(problems))
    existing = load_state(workdir)
    if existing is not None:
        raise LabError(f"a lab ({existing.name!r}) is already up in {workdir}: bring it down first "
                       "(fleet lab down)")
    if network.namespace_exists(plan.netns):
        raise LabError(network.namespace_taken_message(plan.netns))
    started = time.monotonic()
    image = build_image(say)
    state = LabState(name=plan.name, netns=plan.netns, kernel_version=image.kernel_version,
                     guests=tuple(GuestRecord(guest.name, str(guest.ipv4)) for guest in plan.guests))
    claim(workdir, state)
    try:
        _bring_up(plan, image, workdir, state, say)
    except BaseException as exc:
        say("lab up failed: tearing down what it started")
        try:
            _teardown(workdir)
        except Exception as cleanup_error:  # report both; the original error stays the cause
            exc.add_note(f"cleaning up after the failure also failed: {cleanup_error}")
        if isinstance(exc, Exception) and not isinstance(exc, LabError):
            raise LabError(f"lab {plan.name!r} could not be brought up: {exc}") from exc
        raise
    info = status(workdir=workdir)
    assert info is not None
    say(f"lab {plan.name!r} up: {len(plan.guests)} guests in {time.monotonic() - started:.1f} s; "
        f"inventory in {info.inventory_dir}")
    return info


def _bring_up(plan: LabPlan, image: GuestImage, workdir: Path, state: LabState, say: Progress) -> None:
    network.create_namespace(plan.netns)
    state = dataclasses.replace(state, netns_owned=True)
    save_state(workdir, state)
    network.create_bridge_and_taps(plan)

    say("generating SSH keys")
    client_key = client_key_path(workdir)
    client_public = generate_ed25519(client_key, f"fleet-lab-{plan.name}")
    hosts = [(guest.name, str(guest.ipv4.ip)) for guest in plan.guests]
    host_keys: dict[str, str] = {}
    for guest in plan.guests:
        files = guest_files(workdir, guest.name)
        host_keys[guest.name] = generate_ed25519(files.host_key, f"root@{guest.name}")
        files.overlay.write_bytes(cpio.write_newc_gz(rootfs.guest_entries(
            host_key=files.host_key.read_bytes(), host_key_pub=(host_keys[guest.name] + "\n").encode(),
            authorized_keys=(client_public + "\n").encode(), hosts=hosts)))

    fwd_files = forwarder_files(workdir)
    forwarder_pid, ports = start_forwarder(
        fwd_files, network.netns_path(plan.netns),
        {guest.name: (str(guest.ipv4.ip), 22) for guest in plan.guests})
    state = dataclasses.replace(state, forwarder_pid=forwarder_pid, guests=tuple(
        dataclasses.replace(record, ssh_port=ports[record.name]) for record in state.guests))
    save_state(workdir, state)
    write_inventory(inventory_dir(workdir), plan.name, [
        InventoryHost(guest.name, ports[guest.name], str(guest.ipv4.ip), host_keys[guest.name])
        for guest in plan.guests], client_key)

    boot_guests(plan.guests, image, workdir, state, say)


def status(*, workdir: Path) -> LabInfo | None:
    """The lab in `workdir` with the liveness of its processes, or None when there is none.

    `forwarder_pid` is None when the forwarder is not running.
    """
    workdir = _workdir(workdir)
    state = load_state(workdir)
    if state is None:
        return None
    guests = []
    for record in state.guests:
        process = qemu_process(guest_files(workdir, record.name), record.pid)
        guests.append(GuestInfo(name=record.name, ipv4=record.ipv4.split("/")[0],
                                ssh_port=record.ssh_port, pid=process.pid if process else None,
                                running=process is not None and is_alive(process)))
    forwarder = forwarder_process(workdir, state)
    return LabInfo(name=state.name, workdir=workdir, netns=state.netns,
                   inventory_dir=inventory_dir(workdir), guests=tuple(guests),
                   forwarder_pid=forwarder.pid if forwarder and is_alive(forwarder) else None)


def forwarder_process(workdir: Path, state: LabState | None) -> OwnedProcess | None:
    files = forwarder_files(workdir)
    pid = state.forwarder_pid if state and state.forwarder_pid else read_pidfile(files.pidfile)
    return OwnedProcess(pid, str(files.config)) if pid else None


def _guest_processes(workdir: Path, state: LabState | None) -> list[OwnedProcess]:
    """Every guest QEMU this workdir knows of: from the state, and from any guest directory left."""
    recorded = {record.name: record.pid for record in state.guests} if state else {}
    root = workdir / "guests"
    names = set(recorded) | ({path.name for path in root.iterdir()} if root.is_dir() else set())
    found = (qemu_process(guest_files(workdir, name), recorded.get(name)) for name in sorted(names))
    return [process for process in found if process is not None]


def _teardown(workdir: Path) -> None:
    state = load_state(workdir)
    forwarder = forwarder_process(workdir, state)
    processes = ([forwarder] if forwarder else []) + _guest_processes(workdir, state)
    survivors = stop(processes)
    if survivors:
        raise LabError(f"could not stop PIDs {', '.join(str(p.pid) for p in survivors)} of the lab in "
                       f"{workdir}; the lab's state is kept so that `down` can be retried")
    if state is not None and state.netns_owned:
        network.delete_namespace(state.netns)
    for entry in OWNED_ENTRIES:
        path = workdir / entry
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def down(*, workdir: Path) -> None:
    """Stop the lab in `workdir` and remove its namespace, keys, inventory and state.

    Idempotent, and works after a half-failed `up`. The image cache is kept.
    """
    workdir = _workdir(workdir)
    if workdir.is_dir():
        _teardown(workdir)


def stop_guest(guest: str, *, workdir: Path) -> None:
    """Kill one guest's QEMU (the rest of the lab keeps running)."""
    workdir = _workdir(workdir)
    state = load_state(workdir)
    if state is None:
        raise LabError(f"no lab is up in {workdir}")
    names = [record.name for record in state.guests]
    if guest not in names:
        raise LabError(f"lab {state.name!r} has no guest {guest!r} (it has {', '.join(names)})")
    recorded = next(record.pid for record in state.guests if record.name == guest)
    process = qemu_process(guest_files(workdir, guest), recorded)
    if process is not None and stop([process]):
        raise LabError(f"could not stop guest {guest}'s QEMU (PID {process.pid})")

