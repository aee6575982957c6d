"""The lab tier's shared lab: one lab of 4 QEMU guests per test session, booted the first time a
test asks for it and torn down when the session ends (also after a failure or Ctrl-C). Each
module gets it through `lab`, after `fleet.lab.reset` (every guest running and answering SSH,
no sit1, no rule or qdisc in the lab's namespace ...), so modules depend neither on each other
nor on their order. A module that wants fewer guests looks at it through `labtools.lab_view`.
Tests of `up` and `down` themselves, and the 10-guest and benchmark tests, boot their own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from fleet.lab import LabInfo, check_prerequisites, down, reset, up

SHARED_GUESTS = 4


def lab_problems() -> list[str]:
    """Why the lab cannot run here ([] when it can)."""
    return ["needs root"] if os.geteuid() != 0 else check_prerequisites()


@dataclass
class SharedLab:
    info: LabInfo
    fresh: bool = True  # just booted: nothing to reset yet


@pytest.fixture(scope="session")
def shared_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedLab]:
    problems = lab_problems()
    if problems:
        pytest.skip("the lab cannot run here: " + "; ".join(problems))
    workdir = tmp_path_factory.mktemp("shared-lab")
    try:
        yield SharedLab(up(SHARED_GUESTS, workdir=workdir, name=f"lab{uuid.uuid4().hex[:6]}"))
    finally:
        down(workdir=workdir)


@pytest.fixture(scope="module")
def lab(shared_lab: SharedLab) -> LabInfo:
    """The shared lab of 4 guests (h1..h4), as `up` left it."""
    if not shared_lab.fresh:
        shared_lab.info = reset(workdir=shared_lab.info.workdir, progress=print)
    shared_lab.fresh = False
    return shared_lab.info
