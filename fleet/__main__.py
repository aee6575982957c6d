# PYTHON_ARGCOMPLETE_OK
from fleet.cli import run

run()
