"""The FiberStack reference agent: collect this machine's metrics and push them through the public API.

It is a client of the product, not part of the server: nothing in this package imports Django, reads
settings or touches the database, so the collectors, probes and HTTP client behave the same under
``manage.py agent`` (the convenient way to start it) and ``python -m apps.metrics.agent`` on a machine
that only has this package and psutil. Only the stdlib (``urllib``) speaks HTTP.

* :mod:`.collectors` -- host metrics with psutil, named like Telegraf's inputs so dashboards fit both;
* :mod:`.probes` -- HTTP GET, TCP connect and ICMP ping checks of other endpoints;
* :mod:`.client` -- the push client: bounded retry buffer, backoff, pluggable transport;
* :mod:`.runner` -- the collection loop, command-line options and signal handling.
"""

from __future__ import annotations

AGENT_VERSION = "0.1.0"
USER_AGENT = f"fiberstack-agent/{AGENT_VERSION}"
