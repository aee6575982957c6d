"""fleet's tasks from a Nornir script.

    python examples/nornir_tasks.py INVENTORY_DIR

1. teardown as a dry run with Nornir's own (threaded) runner: one login per host, kept by the
   connection plugin `fleet` for the next run; print_result shows Nornir's Results.
2. the mesh with Nornir's runner, over the same logins: every host runs mesh_probe,
   mesh_report makes the matrix; then nr.close_connections() ends the logins.
3. the same mesh with fleet's runner, on one event loop: fleet.nornir.run, the fast way.

Exit code: 0 when every host and pair is ok, 1 otherwise.
"""

import sys

from nornir import InitNornir
from nornir_utils.plugins.functions import print_result

import fleet.nornir


def main(argv: list[str]) -> int:
    directory = argv[1] if len(argv) > 1 else "inventory"
    nr = InitNornir(inventory={"plugin": "FleetInventory", "options": {"inventory_dir": directory}},
                    logging={"enabled": False})

    teardown = nr.run(task=fleet.nornir.teardown, dry_run=True)
    print_result(teardown)
    for name, results in teardown.items():
        result = results[0]
        print(f"teardown {name}: changed={result.changed} failed={result.failed}"
              + (f" {result.result}" if result.failed else ""))

    probes = nr.run(task=fleet.nornir.mesh_probe, count=2, on_failed=True)
    threaded = fleet.nornir.mesh_report(nr, probes)
    nr.close_connections(on_failed=True)
    print("\nmesh with Nornir's runner:\n" + threaded.render())

    outcome = fleet.nornir.run(nr, "mesh", params={"count": 2})
    print("\nmesh with fleet's runner:\n" + outcome.report.render())

    return max(1 if teardown.failed else 0, threaded.exit_code, outcome.exit_code)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
