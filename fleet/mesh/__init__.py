"""The mesh: probers and their output parsers (probe.py, ping.py, fping.py, icmp_prober.py run
on the hosts), the reachability model (model.py), its table and JSON (report.py) and the mesh
task (task.py)."""
