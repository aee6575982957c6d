"""The lab boots 30 guests reliably: software-emulated guests booting at once on 2 cores once
panicked now and then ("IO-APIC + timer doesn't work!"). Several boots in a row, each of which
must bring every guest's sshd up. CI runs FLEET_LAB_BOOT_TRIES=4 (the default); by hand, e.g.
`FLEET_LAB_BOOT_TRIES=10 python3 -m pytest tests/test_lab_scale.py` (docs/lab.md has figures).
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

from fleet.lab import check_prerequisites, down, up

GUESTS = 30
TRIES = int(os.environ.get("FLEET_LAB_BOOT_TRIES", "4"))
PROBLEMS = ["needs root"] if os.geteuid() != 0 else check_prerequisites()
pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(bool(PROBLEMS), reason="; ".join(PROBLEMS) or "ready")]


@pytest.mark.parametrize("attempt", range(1, TRIES + 1))
def test_thirty_guests_boot_every_time(attempt, tmp_path):
    said: list[str] = []
    started = time.monotonic()
    try:
        info = up(GUESTS, workdir=tmp_path / "lab", name=f"s{uuid.uuid4().hex[:6]}",
                  progress=said.append)
        assert len(info.guests) == GUESTS and all(g.running for g in info.guests)
        assert sum(line.endswith("s)") and " ready (" in line for line in said) == GUESTS
    finally:
        down(workdir=tmp_path / "lab")
    retried = [line for line in said if "once more" in line]
    print(f"try {attempt}: {GUESTS} guests up in {time.monotonic() - started:.0f} s; "
          f"retried: {retried or 'none'}")
