"""A fleet inventory through Nornir: InitNornir with fleet's inventory plugin, a filter, and each
host with its SSH address and ISATAP address.

    python examples/nornir_inventory.py INVENTORY_DIR [HOST ...]

A bad inventory fails here exactly as `fleet inventory` does, naming the file, host and field.
"""

import sys

from nornir import InitNornir

import fleet.nornir


def main(argv: list[str]) -> int:
    directory = argv[1] if len(argv) > 1 else "inventory"
    names = set(argv[2:])
    nr = InitNornir(inventory={"plugin": "FleetInventory", "options": {"inventory_dir": directory}},
                    logging={"enabled": False})
    if names:
        nr = nr.filter(filter_func=lambda host: host.name in names)
    for host in nr.inventory.hosts.values():
        validated = fleet.nornir.fleet_host(host)  # what fleet checked: ipv4, prefix, ISATAP address
        print(f"{host.name}  ssh {host.hostname}:{host.port or 22}  ipv4 {validated.ipv4}  "
              f"isatap {validated.address}  groups {','.join(validated.groups) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
