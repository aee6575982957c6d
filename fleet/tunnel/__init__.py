"""The ISATAP tunnel: `ip -j` parsing (iproute.py), the host's preflight facts (preflight.py),
ownership and the plan with its scripts (plan.py), and the setup and teardown tasks. The address
maths is fleet.isatap's, below this package."""
