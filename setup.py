"""Package discovery for setuptools; everything else about the package is in pyproject.toml.

Every package under fleet/ is found automatically: a package list written by hand once left one
out of the wheel.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["fleet", "fleet.*"]))
