"""From Nornir's hosts to fleet's: the validated FleetHost a Nornir host carries.

fleet validates an inventory once, when it is loaded (FleetInventory, load_inventory), and each
Nornir host it builds (a fleet.inventory.LoadedHost) keeps its FleetHost and the Inventory it came
from. Nornir's filters keep those host objects, so `nr.filter(...)` works as usual. What is used is
what was validated: a host whose connection settings were changed afterwards (by a Nornir
transform_function, say) is refused rather than reached at an address fleet never checked.
"""

from __future__ import annotations

from nornir.core import Nornir
from nornir.core.inventory import Host

from fleet.core.errors import UsageError
from fleet.inventory import FleetHost, Inventory
from fleet.inventory.files import CONNECTION_PLUGIN

NOT_LOADED = ("was not loaded by fleet: build the Nornir object with InitNornir(inventory="
              "{'plugin': 'FleetInventory', 'options': {'inventory_dir': DIR}}) or "
              "fleet.inventory.load_inventory(DIR).nornir")


def fleet_host(host: Host) -> FleetHost:
    """The validated FleetHost of a Nornir host that fleet loaded; UsageError otherwise."""
    found = getattr(host, "fleet_host", None)
    if not isinstance(found, FleetHost):
        raise UsageError(f"host {host.name!r} {NOT_LOADED}")
    params = host.get_connection_parameters(CONNECTION_PLUGIN)
    now = (params.hostname if params.hostname is not None else host.name, params.port,
           params.username, params.password)
    if now != (found.ssh_host, found.ssh_port, found.username, found.password):
        raise UsageError(f"host {host.name!r}: its hostname, port, username or password changed "
                         "after fleet validated the inventory (a transform_function?); fleet uses "
                         "only what it validated: change the inventory files instead")
    return found


def fleet_inventory(nr: Nornir) -> Inventory:
    """fleet's Inventory of the Nornir object's hosts (after its filters), in Nornir's order."""
    hosts = tuple(fleet_host(h) for h in nr.inventory.hosts.values())
    loads = {id(h.nornir_host.fleet_inventory): h.nornir_host.fleet_inventory
             for h in hosts}
    if not loads:
        raise UsageError("the Nornir object has no hosts (after its filters)")
    if len(loads) > 1:
        raise UsageError("the Nornir object's hosts come from more than one loaded inventory")
    (loaded,) = loads.values()
    return Inventory(loaded.directory, hosts, loaded.nornir, loaded.files)


__all__ = ["fleet_host", "fleet_inventory"]
