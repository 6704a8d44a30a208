"""`python -m modxctl`: the same as the modxctl script."""
from .main import cli

cli(prog_name="modxctl")
