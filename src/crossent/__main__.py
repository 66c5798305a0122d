"""``python -m crossent``: the ``crossent`` command."""

from crossent.cli import main

main()
