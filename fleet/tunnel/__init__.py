"""The ISATAP tunnel: `ip -j` parsing (iproute.py), the host's preflight facts (preflight.py),
ownership and the plan (plan.py), the scripts that read and change the host and their
parsers (scripts.py), and the setup and teardown tasks' parameters (params.py). The address
maths is fleet.isatap's, below this package."""
