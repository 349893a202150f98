"""`python -m qtctl`."""

from __future__ import annotations

import sys

from qtctl.cli.app import main

sys.exit(main())
