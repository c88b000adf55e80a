"""`python -m vizattn.cli`: the same as the `vizattn` command."""
import sys

from vizattn.cli import main

sys.exit(main())
