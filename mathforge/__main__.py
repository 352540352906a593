"""`python -m mathforge` runs the command line."""

import sys

from mathforge.cli import main

sys.exit(main())
