"""Persistent SSH connections, like OpenSSH's ControlPersist.

`fleet run --persist SECONDS` hands every SSH connection to a background process that keeps it open
for SECONDS after the last run, so the next run on the same hosts opens a channel on a live
connection instead of paying a new TCP connection, key exchange and login on every host.

    wire.py     the protocol between the CLI and the background process (pure: framing, keys, paths)
    client.py   PersistentTransport (a Transport the runner uses) and starting the process
    daemon.py   the background process: one event loop owning the pooled asyncssh connections
"""
