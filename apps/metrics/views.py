"""The ingest doors: plain Django views (no DRF: content negotiation and serializers would cost more
than parsing) that every agent talks to. Each door is the same pipeline:

    ingest token -> request rate limit -> read body (size limits, gzip) -> parse -> sample rate limit
    -> services.ingest (one transaction: 2xx means committed) -> the reply that door's clients expect

Errors are always JSON with ``error`` (a sentence) and ``code``; InfluxDB clients read ``error`` (v1) or
``message`` (v2), so the Influx doors send both. Bad input never produces a 500.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from apps.core.api.schema import read_side
from apps.hosts.models import Host
from apps.metrics import ratelimit
from apps.metrics.ingest import (
    ParseOptions,
    ParseResult,
    PayloadError,
    parse_agent_payload,
    parse_collectd_json,
    parse_line_protocol,
    parse_metrics_json,
    parse_probe_payload,
    parse_remote_write,
)
from apps.metrics.ingest.influx import UNREAD_LINES
from apps.metrics.ingest.types import SeriesLimits
from apps.metrics.ingest.validation import printable
from apps.metrics.models import MetricFamily, Series
from apps.metrics.services import IngestSummary, host_labels, ingest

logger = logging.getLogger(__name__)

INFLUX_VERSION = "1.8.10"
_PRECISIONS = {"": "ns", "n": "ns", "ns": "ns", "u": "us", "us": "us", "\u00b5": "us", "ms": "ms", "s": "s"}
_CREATE_DATABASE = re.compile(r"\s*CREATE\s+DATABASE\s+\S", re.IGNORECASE)


#: Every door accepts basic auth (token as password), and clients such as collectd's libcurl ("any auth")
#: send credentials only after a ``Basic`` challenge: so the 401 offers Basic first, then Bearer.
AUTH_CHALLENGE = 'Basic realm="fiberstack", Bearer realm="fiberstack"'


def limit(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def max_body_bytes() -> int:
    """Bytes on the wire (compressed or not)."""
    return limit("FIBERSTACK_INGEST_MAX_BODY_BYTES", 16 * 1024 * 1024)


def max_decoded_bytes() -> int:
    """Bytes after gzip/snappy decompression: what the parser sees."""
    return limit("FIBERSTACK_INGEST_MAX_DECODED_BYTES", 64 * 1024 * 1024)


class DoorError(Exception):
    """A reply other than success, raised anywhere in the pipeline and rendered by ``_run``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   **extra: Any) -> JsonResponse:
    response = JsonResponse({"error": message, "code": code, "message": message, **extra}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# ---------------------------------------------------------------------------------------------------------
# Pipeline pieces


def _authenticate(request: HttpRequest, *, allow_query_password: bool = False) -> Any:
    from apps.organizations.authentication import authenticate_agent

    token = authenticate_agent(request)
    if token is None and allow_query_password and request.GET.get("p"):
        # InfluxDB 1.x clients may put credentials in the query string (?u=...&p=<token>).
        from apps.organizations.services import authenticate_token

        token = authenticate_token(request.GET["p"])
    if token is None:
        presented = bool(request.META.get("HTTP_AUTHORIZATION")) or bool(request.GET.get("p"))
        message = ("Invalid, expired or revoked token." if presented
                   else "Authentication required: send an ingest token as 'Authorization: Bearer <token>', "
                        "'Authorization: Token <token>' or as the basic-auth password.")
        raise DoorError(401, "unauthorized", message, {"WWW-Authenticate": AUTH_CHALLENGE})
    if not token.allows_write():
        raise DoorError(403, "forbidden", f"This token has the {token.scope} scope; ingest needs the ingest scope.")
    return token


def _rate_limited(verdict: ratelimit.Verdict) -> DoorError:
    unit = "requests" if verdict.limit_name == "requests" else "samples"
    return DoorError(
        429, "rate_limited",
        f"Rate limit exceeded: at most {verdict.limit} {unit} per second for this token; retry after "
        f"{verdict.retry_after} s.",
        {"Retry-After": str(verdict.retry_after)},
        limit=verdict.limit, retry_after=verdict.retry_after,
    )


def _too_large(decoded: bool, size_limit: int) -> DoorError:
    what, setting = (("decompressed body", "FIBERSTACK_INGEST_MAX_DECODED_BYTES") if decoded
                     else ("request body", "FIBERSTACK_INGEST_MAX_BODY_BYTES"))
    return DoorError(413, "too_large", f"The {what} is larger than the limit of {size_limit} bytes ({setting}).",
                     limit=size_limit)


def read_body(request: HttpRequest, *, encodings: tuple[str, ...] = ("gzip",)) -> tuple[bytes, str]:
    """The request body with gzip undone, within both size limits; returns (body, remaining encoding).

    Reads the stream directly (not ``request.body``), so Django's DATA_UPLOAD_MAX_MEMORY_SIZE never
    answers with an HTML 400, and never holds more than limit + 1 bytes of a chunked body."""
    wire_limit = max_body_bytes()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > wire_limit:
        raise _too_large(False, wire_limit)
    data = request.read(wire_limit + 1)
    if len(data) > wire_limit:
        raise _too_large(False, wire_limit)
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        if len(data) > max_decoded_bytes():
            raise _too_large(True, max_decoded_bytes())
        return data, ""
    if encoding not in encodings:
        raise DoorError(415, "unsupported_encoding",
                        f"Content-Encoding {encoding!r} is not supported here; use {' or '.join(encodings)}.")
    if encoding == "gzip":
        return gunzip_limited(data, max_decoded_bytes()), ""
    return data, encoding


def gunzip_limited(data: bytes, size_limit: int) -> bytes:
    """Decompress gzip (several members allowed) and stop at ``size_limit`` output bytes, so a gzip bomb
    costs at most the limit in memory."""
    out: list[bytes] = []
    produced = 0
    remaining = data
    while remaining:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(remaining, size_limit - produced + 1)
        except zlib.error as exc:
            raise DoorError(400, "invalid", f"The gzip body is corrupt: {exc}.") from None
        produced += len(chunk)
        if produced > size_limit or inflater.unconsumed_tail:
            raise _too_large(True, size_limit)
        out.append(chunk)
        if not inflater.eof:
            raise DoorError(400, "invalid", "The gzip body is truncated.")
        remaining = inflater.unused_data
    return b"".join(out)


def _column_length(model: Any, field: str) -> int:
    return int(model._meta.get_field(field).max_length)


def series_limits() -> SeriesLimits:
    """The per-series limits from the settings, capped by the columns the values are stored in, so that
    whatever passes validation fits the database (a name setting above ``Series.name`` cannot cause a
    500)."""
    return SeriesLimits(
        max_labels=limit("FIBERSTACK_INGEST_MAX_LABELS", 64),
        max_name_bytes=min(limit("FIBERSTACK_INGEST_MAX_NAME_BYTES", 200), _column_length(Series, "name"),
                           _column_length(MetricFamily, "name")),
        max_label_value_bytes=limit("FIBERSTACK_INGEST_MAX_LABEL_VALUE_BYTES", 2048),
        max_host_chars=_column_length(Host, "name"),
        max_unit_chars=min(_column_length(Series, "unit"), _column_length(MetricFamily, "unit")),
        host_labels=host_labels(),
    )


def parse_options(precision: str = "ns") -> ParseOptions:
    return ParseOptions(
        now_us=int(timezone.now().timestamp() * 1_000_000),
        max_past_s=limit("FIBERSTACK_INGEST_MAX_PAST_S", 7 * 86400),
        max_future_s=limit("FIBERSTACK_INGEST_MAX_FUTURE_S", 600),
        max_samples=limit("FIBERSTACK_INGEST_MAX_SAMPLES", 500_000),
        nan_policy=str(getattr(settings, "FIBERSTACK_INGEST_NAN_POLICY", "drop")),  # type: ignore[arg-type]
        precision=precision,  # type: ignore[arg-type]
        limits=series_limits(),
    )


def _store(token: Any, result: ParseResult) -> IngestSummary:
    from apps.hosts.services import UnknownHostsError

    verdict = ratelimit.check_samples(token.pk, len(result))
    if not verdict.allowed:
        raise _rate_limited(verdict)
    try:
        return ingest(token=token, result=result, now=timezone.now())
    except UnknownHostsError as exc:
        names = sorted(getattr(exc, "names", []) or [])
        raise DoorError(
            422, "unknown_hosts",
            f"Unknown hosts: {', '.join(names)}. This organization does not register hosts automatically; "
            "create them first. Nothing was stored.",
            hosts=names,
        ) from None


def _run(request: HttpRequest, handler: Callable[[HttpRequest], HttpResponse],
         extra_headers: dict[str, str] | None = None) -> HttpResponse:
    """Run a door, turning DoorError and PayloadError into JSON replies."""
    try:
        response = handler(request)
    except DoorError as exc:
        response = error_response(exc.status, exc.code, exc.message, exc.headers, **exc.extra)
    except PayloadError as exc:
        response = error_response(400, "invalid", f"{exc.location}: {exc.reason}", location=exc.location,
                                  reason=exc.reason)
    for name, value in (extra_headers or {}).items():
        response[name] = value
    return response


def _door(request: HttpRequest, *, parse: Callable[[bytes, ParseOptions], ParseResult],
          encodings: tuple[str, ...] = ("gzip",), precision: str = "ns") -> tuple[IngestSummary, ParseResult]:
    token = _authenticate(request)
    verdict = ratelimit.check_request(token.pk)
    if not verdict.allowed:
        raise _rate_limited(verdict)
    body, _ = read_body(request, encodings=encodings)
    result = parse(body, parse_options(precision))
    return _store(token, result), result


def summary_body(summary: IngestSummary) -> dict[str, Any]:
    """The JSON doors' reply; the same shape for 200 and 400 so clients parse one thing."""
    return {
        "accepted": summary.accepted,
        "rejected": [error.as_dict() for error in summary.errors],
        "skipped": dict(summary.skipped),
    }


def _json_reply(summary: IngestSummary) -> JsonResponse:
    return JsonResponse(summary_body(summary), status=400 if summary.errors else 200)


def _require_post(request: HttpRequest) -> None:
    if request.method != "POST":
        raise DoorError(405, "method_not_allowed", f"Use POST, not {request.method}.", {"Allow": "POST"})


# ---------------------------------------------------------------------------------------------------------
# InfluxDB


def _influx_precision(request: HttpRequest) -> str:
    raw = request.GET.get("precision", "")
    precision = _PRECISIONS.get(raw)
    if precision is None:
        raise DoorError(400, "invalid", f"precision {raw!r} is not supported: use ns, us, ms or s.",
                        parameter="precision")
    return precision


def _influx_write(request: HttpRequest) -> HttpResponse:
    _require_post(request)
    token = _authenticate(request, allow_query_password=True)
    verdict = ratelimit.check_request(token.pk)
    if not verdict.allowed:
        raise _rate_limited(verdict)
    precision = _influx_precision(request)
    body, _ = read_body(request)
    result = parse_line_protocol(body, parse_options(precision))
    summary = _store(token, result)
    if not summary.errors:
        return no_content(summary)
    return influx_partial_write(summary)


SKIPPED_HEADER = "X-FiberStack-Skipped"
ACCEPTED_HEADER = "X-FiberStack-Accepted"


def skipped_header(summary: IngestSummary) -> str:
    """``string_fields=3, non_finite=1``: what a successful write left out, sorted by name."""
    return ", ".join(f"{name}={count}" for name, count in sorted(summary.skipped.items()) if count)


def no_content(summary: IngestSummary) -> HttpResponse:
    """The 204 that InfluxDB and Prometheus clients expect. A 204 has no body, so the number of samples
    stored travels in ``X-FiberStack-Accepted`` and what was skipped (string fields, NaN/Inf values under
    the "drop" policy) in ``X-FiberStack-Skipped``, absent when nothing was skipped. The 400 bodies carry
    the same counts under ``accepted`` and ``skipped``."""
    response = HttpResponse(status=204)
    response[ACCEPTED_HEADER] = str(summary.accepted)
    skipped = skipped_header(summary)
    if skipped:
        response[SKIPPED_HEADER] = skipped
    return response


def influx_partial_write(summary: IngestSummary) -> JsonResponse:
    """InfluxDB's 400 for bad lines: 1.x says ``partial write: <reasons> dropped=N`` when some points were
    written and just the reasons when none were; 2.x clients read ``message`` and ``line``. The good
    lines are stored either way."""
    reasons = "\n".join(error.reason for error in summary.errors)
    dropped = len(summary.errors) + summary.skipped.get("unlisted_errors", 0) + summary.skipped.get(UNREAD_LINES, 0)
    message = f"partial write: {reasons} dropped={dropped}" if summary.accepted else reasons
    first = summary.errors[0].location
    line = int(first.split()[-1]) if first.startswith("line ") and first.split()[-1].isdigit() else None
    response = JsonResponse(
        {"error": message, "code": "invalid", "message": message, "line": line, **summary_body(summary),
         "errors": [error.as_dict() for error in summary.errors]},
        status=400,
    )
    # Reasons quote the client's line: no raw control character may reach a header.
    response["X-Influxdb-Error"] = printable(message.replace("\n", " "))[:1024]
    return response


_INFLUX_HEADERS = {"X-Influxdb-Version": INFLUX_VERSION, "X-Influxdb-Build": "OSS"}


@csrf_exempt
def influx_write(request: HttpRequest) -> HttpResponse:
    """``POST /write`` (InfluxDB 1.x) and ``POST /api/v2/write`` (2.x): line protocol."""
    return _run(request, _influx_write, _INFLUX_HEADERS)


@csrf_exempt
def api_write(request: HttpRequest) -> HttpResponse:
    """``POST /api/v1/write``: line protocol, or Prometheus remote_write when the request says so (the
    path Prometheus users configure for VictoriaMetrics-style servers)."""
    if _is_remote_write(request):
        return prom_write(request)
    return influx_write(request)


def _is_remote_write(request: HttpRequest) -> bool:
    return bool(request.META.get("HTTP_X_PROMETHEUS_REMOTE_WRITE_VERSION")) or request.META.get(
        "CONTENT_TYPE", ""
    ).startswith("application/x-protobuf")


@csrf_exempt
def ping(request: HttpRequest) -> HttpResponse:
    """``GET|HEAD /ping``: InfluxDB clients check the server before writing. No auth, like InfluxDB."""
    if request.GET.get("verbose") in ("true", "1"):
        response: HttpResponse = JsonResponse({"version": INFLUX_VERSION})
    else:
        response = HttpResponse(status=204)
    for name, value in _INFLUX_HEADERS.items():
        response[name] = value
    return response


def _influx_query(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        raise DoorError(405, "method_not_allowed", f"Use GET or POST, not {request.method}.", {"Allow": "GET, POST"})
    if request.META.get("HTTP_AUTHORIZATION") or request.GET.get("p"):
        _authenticate(request, allow_query_password=True)  # credentials sent: they must be good
    query = request.GET.get("q") or (request.POST.get("q") if request.method == "POST" else None) or ""
    statements = [s for s in query.split(";") if s.strip()]
    if statements and all(_CREATE_DATABASE.match(s) for s in statements):
        return JsonResponse({"results": [{"statement_id": i} for i in range(len(statements))]})
    shown = query.strip()[:200] or "(empty)"
    raise DoorError(400, "invalid", f"error parsing query: FiberStack accepts writes only; {shown!r} is not "
                    "supported (CREATE DATABASE is accepted and ignored). Query metrics with GET /api/v1/metrics.")


@csrf_exempt
def influx_query(request: HttpRequest) -> HttpResponse:
    """``/query``: Telegraf sends ``CREATE DATABASE`` at start; everything else is a clear 400."""
    return _run(request, _influx_query, _INFLUX_HEADERS)


# ---------------------------------------------------------------------------------------------------------
# Prometheus, collectd, FiberStack JSON


def _snappy_declared_length(body: bytes) -> int:
    length = shift = 0
    for byte in body[:5]:
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            return length
        shift += 7
    return 0  # malformed: the parser words the error


def _prom_write(request: HttpRequest) -> HttpResponse:
    _require_post(request)

    def parse(body: bytes, options: ParseOptions) -> ParseResult:
        encoding = request.META.get("HTTP_CONTENT_ENCODING", "snappy").strip().lower() or "snappy"
        if encoding == "snappy" and _snappy_declared_length(body) > max_decoded_bytes():
            raise _too_large(True, max_decoded_bytes())
        return parse_remote_write(body, options, encoding, max_decoded_bytes=max_decoded_bytes())

    summary, _ = _door(request, parse=parse, encodings=("snappy",))
    if not summary.errors:
        return no_content(summary)
    body = summary_body(summary)
    message = (f"{len(summary.errors)} time series rejected, {summary.accepted} samples stored; "
               f"first: {summary.errors[0]}")
    return JsonResponse({"error": message, "code": "invalid", **body}, status=400)


@csrf_exempt
def prom_write(request: HttpRequest) -> HttpResponse:
    """``POST /api/v1/prom/write``: Prometheus remote_write 1.0 (snappy + protobuf), metadata included."""
    return _run(request, _prom_write)


def _json_door(request: HttpRequest, parse: Callable[[bytes, ParseOptions], ParseResult]) -> HttpResponse:
    """The JSON doors differ only in their parser: POST only, JSON summary reply."""

    def handler(request: HttpRequest) -> HttpResponse:
        _require_post(request)
        return _json_reply(_door(request, parse=parse)[0])

    return _run(request, handler)


@csrf_exempt
def collectd_write(request: HttpRequest) -> HttpResponse:
    """``POST /api/v1/collectd``: collectd write_http JSON."""
    return _json_door(request, parse_collectd_json)


def metrics_write(request: HttpRequest) -> HttpResponse:
    """``POST /api/v1/metrics``: the FiberStack JSON batch."""
    return _json_door(request, parse_metrics_json)


@read_side(lambda: _query_view())  # the schema describes GET by the DRF view
@csrf_exempt
def metrics_endpoint(request: HttpRequest) -> HttpResponse:
    """``/api/v1/metrics``: POST writes (this module), GET reads (the DRF query view)."""
    if request.method == "POST":
        return metrics_write(request)
    return _query_view()(request)


def _query_view() -> Callable[..., HttpResponse]:
    global _QUERY_VIEW
    if _QUERY_VIEW is None:
        from apps.metrics.api.views import MetricsQueryView

        _QUERY_VIEW = MetricsQueryView.as_view()
    return _QUERY_VIEW


_QUERY_VIEW: Callable[..., HttpResponse] | None = None


@csrf_exempt
def probe_push(request: HttpRequest) -> HttpResponse:
    """``POST /api/push``: FiberStack probe payload; registers or updates the probe's host."""
    return _json_door(request, parse_probe_payload)


@csrf_exempt
def agent_metrics(request: HttpRequest, host: str) -> HttpResponse:
    """``POST /api/v1/agents/<host>/metrics``: one host's agent payload."""
    return _json_door(request, lambda body, options: parse_agent_payload(host, body, options))
