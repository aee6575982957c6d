"""Package discovery for setuptools; everything else about the package is in pyproject.toml.

Every package under fleet/ is found automatically: a package list written by hand once left one
out of the wheel. The built-in tasks' folder, tasks/ at the top, is installed as the package
`fleet.tasks` (fleet/tasks/ in the source tree only points the source checkout at tasks/).
"""

from setuptools import find_packages, setup

packages = sorted({*find_packages(include=["fleet", "fleet.*"]), "fleet.tasks"})
setup(packages=packages, package_dir={"fleet.tasks": "tasks"})
