"""fleet: ISATAP (IPv6 over IPv4) tunnels on a fleet of Linux hosts, set up and measured over SSH."""

__version__ = "0.1.0"
