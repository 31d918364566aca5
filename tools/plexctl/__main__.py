"""``python -m plexctl`` (what the tests run, so no install is needed)."""

from plexctl.cli import main

main()
