"""A continuous mesh (`fleet watch`): the mesh task run again and again over connections kept
open between rounds, each round judged as a single run is, and remembered in SQLite.

    changes.py   pure: a round as per-pair and per-host states, and what changed between two rounds
    incidents.py pure: breaks, recoveries and flapping read back from the changes
    history.py   the SQLite file: its schema, one transaction per round, reading it back
    retention.py how long the rounds and the changes are kept (--keep), and their deletion
    keep.py      a transport that keeps each host's session open from one round to the next
    loop.py      the rounds themselves, on one event loop, until a count or a stop
    metrics_http.py  the last round's Prometheus text served over HTTP (prometheus_client)

The command line is fleet/cli/watch.py; `fleet report --history DB` reads the file back.
"""
