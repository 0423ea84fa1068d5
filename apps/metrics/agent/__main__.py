"""``python -m apps.metrics.agent --url … --token …``: the agent without Django (see runner.main)."""

from __future__ import annotations

import sys

from apps.metrics.agent.runner import main

sys.exit(main())
