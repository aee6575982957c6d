"""The built-in tasks as the package `fleet.tasks`, from a source checkout.

The tasks live in the repository's top-level tasks/ folder. An installed copy has them in this
package itself (setup.py maps `fleet.tasks` to tasks/, so this file is not what is installed:
tasks/__init__.py is). Run from the source tree (`python -m fleet`, the tests), this package
reaches the tasks by adding that folder to its `__path__`: `import fleet.tasks.mesh` loads
tasks/mesh.py, once, under that one name. No symlink, so it works wherever git checks out.
"""

from pathlib import Path

_SOURCE = Path(__file__).resolve().parent.parent.parent / "tasks"

if (_SOURCE / "__init__.py").is_file() and str(_SOURCE) not in __path__:
    __path__.append(str(_SOURCE))
