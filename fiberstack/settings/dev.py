"""Settings for `make run`: debug on, console e-mail, 2FA offered but not forced."""

from __future__ import annotations

from fiberstack.settings.base import *  # noqa: F403
from fiberstack.settings.env import env_bool

DEBUG = env_bool("DEBUG", True)
