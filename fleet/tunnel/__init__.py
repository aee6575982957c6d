"""The ISATAP tunnel: address maths (isatap.py), `ip -j` parsing (iproute.py), the host's
preflight facts (preflight.py), ownership and the plan with its scripts (plan.py), and the
setup and teardown tasks."""
