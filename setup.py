"""Package discovery for setuptools; everything else about the package is in pyproject.toml.

Every package under fleet/ is found automatically (a package list written by hand once left one
out of the wheel), and the built-in tasks in ./tasks ship inside fleet's own namespace as
fleet.builtin_tasks, so no generic top-level `tasks` package is installed.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["fleet", "fleet.*"]), "fleet.builtin_tasks"],
      package_dir={"fleet.builtin_tasks": "tasks"})
