"""`python -m adapttoken_plugin.launch ...` (and what each torchrun rank runs): the package's `main`."""

import sys

from . import main

sys.exit(main())
