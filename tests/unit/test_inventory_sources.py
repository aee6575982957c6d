"""Inventory sources found by entry point (fleet.inventory_sources), as Nornir finds its plugins:
a distribution installed beside fleet adds a source without fleet importing it, and a source tree
that was never installed still finds fleet's own."""

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from fleet.core.errors import InventoryError
from fleet.inventory import load_inventory
from fleet.inventory.sources import BUILT_IN, GROUP, source_loader, source_names

REPO = Path(__file__).resolve().parents[2]

SOURCE_MODULE = '''
from fleet.inventory.files import InventoryFiles

def build(path, document):
    hosts = {name: {"hostname": address} for name, address in document["hosts"].items()}
    return InventoryFiles(path.parent, hosts, {}, {"data": {"isatap_prefix": "fd00:5efe:1::/64"}},
                          label=str(path))

def not_files(path, document):
    return {"hosts": {}}

def broken(path, document):
    raise AssertionError("never called")
'''


def install_distribution(site: Path) -> None:
    """A distribution as pip leaves it in site-packages: its module, and its metadata with the
    entry points (read by importlib.metadata, exactly as for an installed wheel)."""
    (site / "demo_source.py").write_text(SOURCE_MODULE)
    info = site / "demo_source-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-source\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(f"""\
        [{GROUP}]
        demo.static = demo_source:build
        demo.wrong-type = demo_source:not_files
        demo.missing = demo_source_gone:build
        """))


def load_in_subprocess(site: Path, source: Path) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(f"""\
        import json, sys
        from fleet.core.errors import InventoryError
        from fleet.inventory import load_inventory
        from fleet.inventory.sources import source_names
        try:
            inventory = load_inventory({str(source)!r})
        except InventoryError as exc:
            print(json.dumps({{"error": str(exc), "field": exc.field, "names": source_names()}}))
            sys.exit(0)
        print(json.dumps({{"hosts": [[h.name, str(h.ipv4), str(h.address)] for h in inventory.hosts],
                           "aws": sorted(m for m in sys.modules if m.startswith("fleet.aws"))}}))
        """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=60, check=True)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    install_distribution(site)
    return site


def test_a_source_installed_beside_fleet_is_found_by_its_entry_point(site, tmp_path):
    source = tmp_path / "static.yaml"
    source.write_text("plugin: demo.static\nhosts: {a: 10.0.0.1, b: 10.0.0.2}\n")
    read = json.loads(load_in_subprocess(site, source).stdout)
    assert read["hosts"] == [["a", "10.0.0.1", "fd00:5efe:1::5efe:a00:1"],
                             ["b", "10.0.0.2", "fd00:5efe:1::5efe:a00:2"]]
    assert read["aws"] == []  # another source's file loads no fleet.aws


def test_every_registered_name_is_offered_when_the_plugin_is_unknown(site, tmp_path):
    source = tmp_path / "other.yaml"
    source.write_text("plugin: demo.nothing\n")
    read = json.loads(load_in_subprocess(site, source).stdout)
    assert read["field"] == "plugin"
    assert {"demo.static", "fleet.aws_ec2"} <= set(read["names"])
    assert "`plugin: demo.static`" in read["error"] and "`plugin: fleet.aws_ec2`" in read["error"]
    assert "'demo.nothing'" in read["error"]


@pytest.mark.parametrize("plugin, words", [
    ("demo.wrong-type", "inventory source 'demo.wrong-type' gave dict, not InventoryFiles"),
    ("demo.missing", "inventory source 'demo.missing' (demo_source_gone:build) could not be loaded: "
                     "ModuleNotFoundError"),
])
def test_a_source_that_does_not_work_is_an_inventory_error_naming_it(site, tmp_path, plugin, words):
    source = tmp_path / "bad.yaml"
    source.write_text(f"plugin: {plugin}\n")
    read = json.loads(load_in_subprocess(site, source).stdout)
    assert read["field"] == "plugin" and words in read["error"], read


def test_fleets_own_sources_are_the_ones_pyproject_registers():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][GROUP] == BUILT_IN


def test_the_ec2_source_is_found_without_installing_fleet():
    """The source tree's table stands in for entry points (this tree is on PYTHONPATH, whatever
    fleet distribution is installed, if any)."""
    from fleet.aws.ec2_inventory import ec2_inventory_files

    assert "fleet.aws_ec2" in source_names()
    assert source_loader("fleet.aws_ec2") is ec2_inventory_files
    assert source_loader("fleet.aws_ec3") is None


def test_a_file_whose_plugin_is_not_a_string_is_refused(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("plugin: [fleet.aws_ec2]\n")
    with pytest.raises(InventoryError, match="plugin: fleet.aws_ec2") as raised:
        load_inventory(path)
    assert (raised.value.file, raised.value.field) == (str(path), "plugin")
