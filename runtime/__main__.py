"""``python -m runtime``: the runtime's CLI, in the spirit of crun/runc."""

from runtime.cli import main

main()
