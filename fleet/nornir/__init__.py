"""fleet from Nornir: an inventory plugin, task functions for Nornir's runners, and a whole run.

    from nornir import InitNornir
    import fleet.nornir

    nr = InitNornir(inventory={"plugin": "FleetInventory", "options": {"inventory_dir": "inventory"}},
                    logging={"enabled": False})
    nr.run(task=fleet.nornir.teardown, dry_run=True)        # Nornir's runner: logs in to each host
    nr.run(task=fleet.nornir.setup)                         # over the same connections
    nr.close_connections(on_failed=True)                    # which end here
    outcome = fleet.nornir.run(nr, "mesh")                  # fleet's runner: one event loop
    print(outcome.report.render())

- `FleetInventory` (fleet.nornir.inventory) is registered as Nornir's inventory plugin
  "FleetInventory" (entry point): it loads and validates the directory exactly as `fleet
  inventory` does and fails with the same InventoryError (file, host, field).
  `FleetEC2Inventory` (options {"source": "aws_ec2.yaml"}) does the same for an EC2 source file.
- `setup`, `teardown`, `mesh_probe` (fleet.nornir.tasks) are ordinary synchronous Nornir tasks.
  Each runs fleet's task for its one host over the host's kept connection: `FleetConnection`
  (fleet.nornir.connection), Nornir's connection plugin "fleet" (entry point), opened by the
  first call and reused by the next until nr.close_connections(). Nornir's runners are threads
  and asyncssh's connections belong to one event loop, so the connections live on one event
  loop in a background thread, to which each call hands its work. `mesh_report(nr, results)`
  makes the matrix from `nr.run(task=mesh_probe)`'s results.
- `run(nr, "setup" | "mesh" | "teardown" | your task, ...)` (fleet.nornir.whole_run) runs a task
  on every host of a (filtered) Nornir object with fleet's own runner, on ONE event loop with
  bounded concurrency and one connection per host, and returns fleet's TaskOutcome (the Nornir
  AggregatedResult and the task's report). It is the fast way for a whole fleet, as is fleet.run().

fleet's own async tasks (fleet.tasks.setup.run ...) cannot be given to nr.run: they refuse,
and Nornir records a failed Result whose TypeError names this module.

Nornir loads every installed inventory and connection plugin whenever anyone calls InitNornir, so
importing this package (and fleet.nornir.inventory, fleet.nornir.connection) loads nothing else of
fleet; the rest is imported on first use.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "FleetInventory": "fleet.nornir.inventory",
    "FleetEC2Inventory": "fleet.nornir.inventory",
    "FleetConnection": "fleet.nornir.connection",
    "fleet_host": "fleet.nornir.hosts",
    "fleet_inventory": "fleet.nornir.hosts",
    "setup": "fleet.nornir.tasks",
    "teardown": "fleet.nornir.tasks",
    "mesh_probe": "fleet.nornir.tasks",
    "mesh_report": "fleet.nornir.tasks",
    "run": "fleet.nornir.whole_run",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fleet.nornir' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
