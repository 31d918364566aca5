import sys

from plexd_sim.cli import main

sys.exit(main())
