"""``python -m mailinfra_agent``: the same as ``mailinfra-agent``."""

import sys

from .cli import main

sys.exit(main())
