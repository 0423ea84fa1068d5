"""Entry point: `python -m fiberstack.devstack run|test|stop|status|env|exec` (see __init__)."""

from __future__ import annotations

import sys

from fiberstack.devstack.cli import main

if __name__ == "__main__":
    sys.exit(main())
