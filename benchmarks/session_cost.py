"""What one probe round costs the host: a new SSH session each round, or fleet's kept shell.

A namespace bed of 2 real OpenSSH hosts (root, iproute2, openssh-server, fping). Over one kept
connection to h1 (fleet's own AsyncsshSession), ROUNDS rounds of each:

    session true     `true` in a new session: the session's own cost (channel, fork, login shell)
    session probe    a mesh probe round in a new session (as a warm run did before the kept shell)
    kept probe       the same probe round in the shell kept on the connection (run_repeated)

and prints the CPU the host spent per round (h1's sshd and everything under it, waited-for
children included) and the client's wall time per round. The probe is the mesh's own script
(fleet.mesh.probe) for one peer, h2, with `--count 3 --interval 0.02`.

    python -m benchmarks.session_cost [--rounds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


async def measure(bed: Any, rounds: int) -> dict[str, dict[str, float]]:
    from benchmarks.bigbed import tree_cpu_s
    from fleet.core.transport import RepeatedCommand
    from fleet.inventory import load_inventory
    from fleet.mesh.probe import MeshProbe, ProbeParams
    from fleet.ssh.transport import AsyncsshTransport

    hosts = {h.name: h for h in load_inventory(bed.inventory_dir).hosts}
    h1, h2 = hosts["h1"], hosts["h2"]
    roots = set(bed.sshd_pids.values())
    probe = MeshProbe().script([str(bed.hosts[1].ipv6)], ProbeParams(count=3, interval=0.02))
    transport = AsyncsshTransport()
    session = await transport.connect(h1, timeout=30)
    results: dict[str, dict[str, float]] = {}
    try:
        kinds = {"session true": (session.run, "true"),
                 "session probe": (session.run, probe),
                 "kept probe": (session.run_repeated, RepeatedCommand(probe))}
        for name, (run, command) in kinds.items():
            await run(command, timeout=30)  # warm: the first of each kind is not counted
            cpu, started = tree_cpu_s(roots), time.monotonic()
            for _ in range(rounds):
                done = await run(command, timeout=30)
                if done.exit_status != 0:
                    raise RuntimeError(f"{name}: exit {done.exit_status}: {done.stderr.strip()}")
            results[name] = {"host_cpu_ms": (tree_cpu_s(roots) - cpu) / rounds * 1000,
                             "wall_ms": (time.monotonic() - started) / rounds * 1000}
    finally:
        await session.close()
        await transport.close()
    del h2
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.session_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=300, help="rounds of each kind (default 300)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    options = parser.parse_args(argv)
    from fleet.lab.nsbed import NamespaceBed

    with NamespaceBed(2) as bed:
        results = asyncio.run(measure(bed, options.rounds))
    for name, figures in results.items():
        print(f"{name:14s}  host CPU {figures['host_cpu_ms']:5.2f} ms/round  "
              f"wall {figures['wall_ms']:6.2f} ms/round")
    if options.json:
        Path(options.json).write_text(json.dumps({"rounds": options.rounds, "results": results},
                                                 indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
