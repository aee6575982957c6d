"""fleet as a library, without Nornir in sight: the mesh of an inventory's hosts on one event
loop, its report printed, and its exit code returned.

    python examples/library.py INVENTORY_DIR [JSON_FILE]
"""

import sys

import fleet
from fleet.tasks.mesh import MeshParams


def main(argv: list[str]) -> int:
    directory = argv[1] if len(argv) > 1 else "inventory"
    outcome = fleet.run(["mesh"], directory, params={"mesh": MeshParams(count=2)})
    mesh = outcome["mesh"]
    print(mesh.report.render())
    if len(argv) > 2:
        with open(argv[2], "w") as stream:
            mesh.report.to_json().write_json(stream)
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
