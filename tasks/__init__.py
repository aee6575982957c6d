"""fleet's built-in tasks, one module per task: the folder is the catalogue.

Installed, this folder is the package `fleet.tasks` (setup.py maps it there) and each task is
registered under the entry point group `fleet.tasks` (pyproject.toml), as any other distribution
may register its own. A task holds its parameters, its `run` and its report wiring; the address
maths, the planner, the probers and the report model are libraries under fleet/.
"""
