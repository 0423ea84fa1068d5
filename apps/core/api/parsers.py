"""The API's JSON parser: DRF's, refusing text PostgreSQL cannot store.

PostgreSQL's ``text`` and ``jsonb`` refuse the NUL character (U+0000). DRF's ``CharField`` guards its own
strings, but a JSON-typed field (matchers, tags, labels, widgets) hands nested keys and strings straight
to a ``jsonb`` column, where a NUL is a 500 at insert time. Refusing it once, at parsing, covers every
present and future field: a 400 naming where in the body the character is."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def nul_path(value: Any, path: str = "") -> str | None:
    """Where the first NUL character is in parsed JSON (``matchers[0].value``; ``""`` for the top
    level), or None when there is none."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return f"{path} (a key)" if path else "a key"
            found = nul_path(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


class JSONWithoutNULParser(JSONParser):
    """``JSONParser`` plus a 400 for a NUL character anywhere in a key or a string of the body."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        where = nul_path(data)
        if where is not None:
            raise ParseError(f"{where or 'body'}: text may not contain the NUL character (U+0000).")
        return data
