"""Two Nornir runs over one SSH login per host: fleet's connection plugin.

    python examples/nornir_connection.py INVENTORY_DIR

fleet's task functions keep each host's connection in `host.connections["fleet"]` (the Nornir
connection plugin `fleet`, registered by entry point): the first nr.run logs in, the second
reuses the login, and nr.close_connections() ends them. Both runs here are dry runs: what
teardown and setup would change, read from the hosts, nothing changed.

Prints Nornir's results (print_result), then one line per host: how each run went and how many
times it logged in. Exit code: 0 when every host's runs went fine, 1 otherwise.
"""

import sys

from nornir import InitNornir
from nornir.core.task import Result
from nornir_utils.plugins.functions import print_result

import fleet.nornir


def how(result: Result) -> str:
    """ok, or failed and the error's kind (unreachable, auth, preflight ...)."""
    if not result.failed:
        return "ok"
    return f"failed ({getattr(result.exception, 'kind', type(result.exception).__name__)})"


def main(argv: list[str]) -> int:
    directory = argv[1] if len(argv) > 1 else "inventory"
    nr = InitNornir(inventory={"plugin": "FleetInventory", "options": {"inventory_dir": directory}},
                    logging={"enabled": False})
    try:
        teardown = nr.run(task=fleet.nornir.teardown, dry_run=True)   # logs in to each host
        print_result(teardown)
        setup = nr.run(task=fleet.nornir.setup, dry_run=True, on_failed=True)  # the same logins
        print_result(setup)

        for name, host in nr.inventory.hosts.items():
            runs = ", ".join(f"{done.name} {how(done[name][0])}" for done in (teardown, setup))
            kept = host.connections.get("fleet")
            logins = kept.connection.logins if kept is not None else 0
            print(f"host {name}: {runs}; {logins} login{'' if logins == 1 else 's'}")
    finally:
        nr.close_connections(on_failed=True)  # every host's, the failed ones' too
    still_open = sum(len(h.connections) for h in nr.inventory.hosts.values())
    print(f"open connections after close_connections: {still_open}")
    return 1 if teardown.failed or setup.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
