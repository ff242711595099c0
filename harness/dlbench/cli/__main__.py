"""``python -m dlbench.cli``: the same command as the ``dlbench`` console script."""

import sys

from dlbench.cli.main import main

sys.exit(main())
