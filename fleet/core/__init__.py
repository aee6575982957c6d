"""The generic engine: the transport seam, the runner, the task protocol, results and output.

Nothing here knows about tunnels, meshes, SSH libraries or the lab; the feature packages build on
it, never the other way round (tests/unit/test_architecture.py checks the arrows).
"""
