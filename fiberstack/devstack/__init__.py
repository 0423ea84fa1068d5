"""Developer stack: the code behind `make run` and `make test`.

A stranger with a fresh machine should get a working product with two commands and no manual
service setup. So when `DATABASE_URL` / `REDIS_URL` are not set, this package runs private
PostgreSQL and Redis instances under the project's `var/` folder (on project-specific ports, so
they never collide with services the machine already runs), then starts or tests the product
against them.

    python -m fiberstack.devstack run      # services + migrate + seed + daphne, celery, agent
    python -m fiberstack.devstack test     # services + pytest (args are passed through)
    python -m fiberstack.devstack stop     # stop the private PostgreSQL and Redis
    python -m fiberstack.devstack status   # what is running where
    python -m fiberstack.devstack env      # `eval "$(... env)"` to use the stack from a shell
    python -m fiberstack.devstack exec CMD # run CMD with the stack's environment

Only the standard library is used (psutil optionally), so the module stays importable before
Django is configured.
"""

from __future__ import annotations
