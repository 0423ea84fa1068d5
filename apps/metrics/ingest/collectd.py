"""collectd ``write_http`` (``Format "JSON"``) -> FiberStack samples.

collectd posts a JSON array of *value lists*; one value list carries one value per data source::

    {"values": [13319], "dstypes": ["derive"], "dsnames": ["value"], "time": 1795305233.425,
     "interval": 5.0, "host": "web-1", "plugin": "cpu", "plugin_instance": "0",
     "type": "cpu", "type_instance": "user"}

Names follow collectd's own ``write_prometheus`` plugin (``metric_family_name`` in collectd 5.x
src/write_prometheus.c), so dashboards written for it work unchanged:

* ``collectd_<plugin>_<type>``, with the plugin left out when it equals the type
  (plugin ``cpu`` / type ``cpu`` -> ``collectd_cpu``; plugin ``memory`` / type ``memory`` ->
  ``collectd_memory``; plugin ``df`` / type ``df_complex`` -> ``collectd_df_df_complex``);
* ``_<dsname>`` appended when the data source is not the conventional ``value``
  (load's ``shortterm`` -> ``collectd_load_shortterm``);
* ``_total`` appended for ``derive`` and ``counter`` data sources, the Prometheus convention for
  cumulative values (``collectd_cpu_total``); ``gauge`` and ``absolute`` get no suffix;
* the result is sanitized like every other name (``naming`` module).

Labels (here FiberStack deliberately differs from write_prometheus, which puts the host in
``instance``): ``host`` = host, ``instance`` = plugin_instance and ``type_instance`` = type_instance,
the last two only when non-empty. So ``cpu/0/cpu-user`` from host ``web-1`` becomes
``collectd_cpu_total{host="web-1", instance="0", type_instance="user"}``.

``time`` is epoch seconds (float); ``interval`` is ignored. collectd sends ``null`` for a derive or
counter it has no rate for yet; those values are skipped and counted in ``skipped['null_values']``.
Errors are located as ``item N``, ``item N, field 'x'`` or ``item N value M`` (0-based indexes into the array and
its ``values``).
"""

from __future__ import annotations

from apps.metrics.ingest.naming import NamingError, intern_key, make_labels, make_metric_name
from apps.metrics.ingest.native_json import json_type, load_json
from apps.metrics.ingest.types import ParseOptions, ParseResult, PayloadError, SampleSink, SeriesKey, SeriesLimits
from apps.metrics.ingest.validation import register_cache, use_limits

__all__ = ["parse_collectd_json"]

_CUMULATIVE = frozenset({"derive", "counter"})
_DSTYPES = frozenset({"gauge", "derive", "counter", "absolute"})
_REQUIRED_STRINGS = ("host", "plugin", "type")
_OPTIONAL_STRINGS = ("plugin_instance", "type_instance")
_LABEL_NAMES = ("host", "instance", "type_instance")

# (host, plugin_instance, type_instance) -> validated labels, or why they are refused. collectd resends the
# same value lists every interval, so each label set is validated once per process (bounded, ~1 KB each).
_LABEL_CACHE_MAX = 50_000
_label_cache: dict[tuple[str, str, str], tuple[tuple[str, str], ...] | str] = {}
register_cache(_label_cache.clear)


def parse_collectd_json(body: bytes | str, options: ParseOptions) -> ParseResult:
    """Parse a collectd write_http JSON body; a bad value list is an error, the others are kept."""
    items = load_json(body)
    if not isinstance(items, list):
        raise PayloadError("expected a JSON array of collectd value lists")
    use_limits(options.limits)
    result = ParseResult()
    sink = SampleSink(result, options)
    name_cache: dict[tuple[str, str, str, str], str] = {}
    label_cache = _label_cache
    for index, item in enumerate(items):
        where = f"item {index}"
        problem = _check_item(item)
        if problem:
            sink.error(where + problem[0], problem[1])
            continue
        plugin, type_ = item["plugin"], item["type"]
        label_values = (item["host"], item.get("plugin_instance") or "", item.get("type_instance") or "")
        labels = label_cache.get(label_values)
        if labels is None:
            try:
                labels = make_labels(zip(_LABEL_NAMES, label_values, strict=True), options.limits)
            except NamingError as exc:
                labels = f"invalid label: {exc}"
            if len(label_cache) >= _LABEL_CACHE_MAX:
                label_cache.clear()
            label_cache[label_values] = labels
        if labels.__class__ is str:
            sink.error(where, labels)  # type: ignore[arg-type]
            continue
        t_us = round(item["time"] * 1_000_000)
        for position, (value, dstype, dsname) in enumerate(
            zip(item["values"], item["dstypes"], item["dsnames"], strict=True)
        ):
            value_where = f"{where} value {position}"
            if value is None:
                result.skipped["null_values"] += 1
                continue
            if type(value) not in (int, float):
                sink.error(value_where, f"value must be a number or null, not {json_type(value)}")
                continue
            if dstype not in _DSTYPES:
                sink.error(value_where, f"unknown dstype {dstype!r}: expected gauge, derive, counter or absolute")
                continue
            if not isinstance(dsname, str) or not dsname:
                sink.error(value_where, "dsname must be a non-empty string")
                continue
            cache_key = (plugin, type_, dsname, dstype)
            name = name_cache.get(cache_key)
            if name is None:
                try:
                    name = name_cache[cache_key] = metric_name(plugin, type_, dsname, dstype, options.limits)
                except NamingError as exc:
                    sink.error(value_where, str(exc))
                    continue
            key: SeriesKey = intern_key((name, labels))
            try:
                number = float(value)
            except OverflowError:
                sink.error(value_where, "value is out of the range of a 64-bit float")
                continue
            if not sink.add(key, t_us, number, value_where):
                return result
    return result


def metric_name(plugin: str, type_: str, dsname: str, dstype: str, limits: SeriesLimits) -> str:
    """write_prometheus' metric family name for one data source (see the module docstring)."""
    parts = ["collectd"]
    if plugin != type_:
        parts.append(plugin)
    parts.append(type_)
    if dsname != "value":
        parts.append(dsname)
    if dstype in _CUMULATIVE:
        parts.append("total")
    return make_metric_name("_".join(parts), limits)


def _check_item(item: object) -> tuple[str, str] | None:
    """(location suffix, reason) when a value list cannot be used at all, else None."""
    if not isinstance(item, dict):
        return "", f"expected a JSON object, not {json_type(item)}"
    for field in _REQUIRED_STRINGS:
        value = item.get(field)
        if not isinstance(value, str) or not value:
            return f", field '{field}'", "must be a non-empty string"
    for field in _OPTIONAL_STRINGS:
        value = item.get(field)
        if value is not None and not isinstance(value, str):
            return f", field '{field}'", "must be a string"
    for field in ("values", "dstypes", "dsnames"):
        if not isinstance(item.get(field), list):
            return f", field '{field}'", "must be an array"
    if not len(item["values"]) == len(item["dstypes"]) == len(item["dsnames"]):
        return "", "fields 'values', 'dstypes' and 'dsnames' must have the same length"
    when = item.get("time")
    if type(when) not in (int, float):
        return ", field 'time'", "must be a number (epoch seconds)"
    if when != when or abs(when) > 1e11:  # NaN, or beyond year 5138: not a collectd timestamp
        return ", field 'time'", f"{when!r} is not a valid epoch time in seconds"
    return None
