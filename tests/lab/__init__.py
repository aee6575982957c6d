"""The lab tier. A package so that its conftest.py imports as `lab.conftest`: a second top-level
`conftest` module would shadow tests/conftest.py, whose helpers every tier imports by that name."""
