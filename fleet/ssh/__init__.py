"""The SSH transport: asyncssh sessions (transport.py, the only module that imports asyncssh),
host-key policy (hostkeys.py) and kept connections in a background process (persist/)."""
