"""`python -m partnerkpi.cli`: the same as the `partnerkpi` command."""

from partnerkpi.cli import main

main()
