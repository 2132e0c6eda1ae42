"""`python -m shopflow.cli ...`, the same as the `shopflow` command."""

from __future__ import annotations

import sys

from shopflow.cli import main

sys.exit(main.main())
