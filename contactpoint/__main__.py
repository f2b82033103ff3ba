"""`python -m contactpoint` is the `contactpoint` command."""

from contactpoint.cli.main import run

run()
