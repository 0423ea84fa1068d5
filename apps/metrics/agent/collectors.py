"""Host metrics with psutil, in two shapes the public API takes.

* :attr:`Collection.document` -- one nested object of host-wide numbers for
  ``POST /api/v1/agents/<host>/metrics``; nested keys join with ``_`` on the server, so
  ``{"cpu": {"usage_idle": 97.0}}`` becomes the series ``cpu_usage_idle{host=…}``.
* :attr:`Collection.items` -- metrics that need their own labels (one per mount, disk or interface,
  and the ``agent_info`` metric that carries strings as labels) for the JSON batch door
  ``POST /api/v1/metrics``; the agent door has only one label set per request.

Names follow Telegraf's ``cpu``, ``mem``, ``swap``, ``system``, ``disk``, ``diskio`` and ``net`` inputs
(``mem_used_percent``, ``disk_used{path="/"}``, ``net_bytes_recv{interface="eth0"}``), so a dashboard
or alert rule written for Telegraf data works unchanged on agent data and the other way round.
Counters (``cpu_time_*``, ``diskio_*``, ``net_*``) are the kernel's cumulative values, as Telegraf
sends them; rates are the query side's job, which survives a lost push without a gap in the counter.

Nothing here imports Django: the collectors run on any machine that has psutil.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from apps.metrics.agent import AGENT_VERSION

#: Pseudo and read-only image filesystems: their usage says nothing about the host (Telegraf's defaults).
IGNORED_FSTYPES = frozenset({"tmpfs", "devtmpfs", "devfs", "iso9660", "overlay", "aufs", "squashfs", "ramfs"})
#: Loop and RAM block devices mirror files and memory; listing them only adds series.
IGNORED_DISK_PREFIXES = ("loop", "ram")
CPU_MODES = ("user", "system", "idle", "nice", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")
#: The first collection needs two CPU readings to compute percentages; this is the gap between them.
CPU_WARMUP_S = 0.25


@dataclass(slots=True)
class Collection:
    """One collection of this machine: ``time`` in epoch seconds, the host document, labelled items."""

    time: float
    document: dict[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)
    #: Inventory facts sent as the host document's ``host_info`` (see :func:`host_info`).
    host_info: dict[str, Any] = field(default_factory=dict)

    def value_count(self) -> int:
        return _count_numbers(self.document) + len(self.items)


def _count_numbers(value: object) -> int:
    if isinstance(value, dict):
        return sum(_count_numbers(child) for child in value.values())
    return int(isinstance(value, int | float) and not isinstance(value, bool))


def hardware_info() -> dict[str, str]:
    """Static facts about the machine; sent as labels of ``agent_info`` (value 1, Prometheus style)."""
    uname = platform.uname()
    return {
        "agent_version": AGENT_VERSION,
        "os": uname.system.lower(),
        "platform": _os_release_name() or uname.system,
        "kernel": uname.release,
        "arch": uname.machine,
        "python": platform.python_version(),
    }


def host_info(info: dict[str, str]) -> dict[str, Any]:
    """The ``host_info`` object of the host document: the server sets the Host's ``agent_version`` and
    ``hardware_info`` from it (inventory, not metrics; unchanged values cost the server no query)."""
    memory_total = psutil.virtual_memory().total
    return {
        "agent_version": info["agent_version"],
        **{key: value for key, value in info.items() if key != "agent_version"},
        "hardware": {
            "cpu_logical": psutil.cpu_count(logical=True) or 0,
            "cpu_physical": psutil.cpu_count(logical=False) or 0,
            "memory_bytes": int(memory_total),
        },
    }


def _os_release_name() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("PRETTY_NAME="):
                    return line.partition("=")[2].strip().strip('"')
    except OSError:
        pass
    return ""


class HostCollector:
    """Reads psutil and builds a :class:`Collection`. Keeps the previous CPU reading between calls.

    psutil computes CPU percentages against the previous call in this process, so the constructor
    takes a first reading and :meth:`collect` waits ``CPU_WARMUP_S`` if it comes sooner than that
    (``--once`` would otherwise report 0 %).
    """

    def __init__(self) -> None:
        psutil.cpu_times_percent(interval=None)
        self._primed_at = time.monotonic()
        self.info = hardware_info()
        self.host_info = host_info(self.info)

    def collect(self) -> Collection:
        wait = CPU_WARMUP_S - (time.monotonic() - self._primed_at)
        if wait > 0:
            time.sleep(wait)
        now = time.time()
        document: dict[str, Any] = {
            "cpu": cpu(),
            "mem": memory(),
            "swap": swap(),
            "system": system(),
        }
        items = [
            {"name": "agent_info", "value": 1, "labels": dict(self.info)},
            *disk_usage(),
            *disk_io(),
            *net_io(),
        ]
        return Collection(time=now, document=document, items=items, host_info=self.host_info)


def cpu() -> dict[str, float]:
    """Percent busy, per-mode percentages since the last call, and per-mode cumulative seconds."""
    percent = psutil.cpu_times_percent(interval=None)
    times = psutil.cpu_times()
    out: dict[str, float] = {}
    for mode in CPU_MODES:
        if hasattr(percent, mode):
            out[f"usage_{mode}"] = round(float(getattr(percent, mode)), 3)
            out[f"time_{mode}"] = float(getattr(times, mode))
    # Telegraf's report_active: everything but idle.
    out["usage_active"] = round(max(0.0, 100.0 - out.get("usage_idle", 100.0)), 3)
    return out


def memory() -> dict[str, float]:
    vm = psutil.virtual_memory()
    out = {
        "total": vm.total,
        "available": vm.available,
        "used": vm.used,
        "free": vm.free,
        "used_percent": round(vm.percent, 3),
        "available_percent": round(100.0 * vm.available / vm.total, 3) if vm.total else 0.0,
    }
    for name in ("buffers", "cached", "shared", "active", "inactive"):
        if hasattr(vm, name):
            out[name] = getattr(vm, name)
    return out


def swap() -> dict[str, float]:
    sw = psutil.swap_memory()
    return {"total": sw.total, "used": sw.used, "free": sw.free, "used_percent": round(sw.percent, 3),
            "in": sw.sin, "out": sw.sout}


def system() -> dict[str, float]:
    """Load averages, CPU counts, total memory, uptime: host-wide numbers that change rarely or slowly."""
    out: dict[str, float] = {}
    try:
        load1, load5, load15 = psutil.getloadavg()
        out.update(load1=round(load1, 3), load5=round(load5, 3), load15=round(load15, 3))
    except (AttributeError, OSError):  # platforms without load averages
        pass
    out["n_cpus"] = psutil.cpu_count(logical=True) or 0
    out["n_physical_cpus"] = psutil.cpu_count(logical=False) or 0
    boot = psutil.boot_time()
    out["boot_time"] = int(boot)
    out["uptime"] = max(0, int(time.time() - boot))
    with contextlib.suppress(OSError):
        out["n_procs"] = len(psutil.pids())
    return out


def disk_usage() -> list[dict[str, Any]]:
    """Usage per mounted filesystem, labelled ``path``, ``device``, ``fstype`` like Telegraf's disk input."""
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for part in psutil.disk_partitions(all=False):
        if part.fstype in IGNORED_FSTYPES or part.mountpoint in seen:
            continue
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:  # unmounted meanwhile, or no permission (e.g. another user's FUSE mount)
            continue
        seen.add(part.mountpoint)
        labels = {"path": part.mountpoint, "device": os.path.basename(part.device), "fstype": part.fstype}
        for name, value, unit in (
            ("disk_total", usage.total, "bytes"),
            ("disk_used", usage.used, "bytes"),
            ("disk_free", usage.free, "bytes"),
            ("disk_used_percent", round(usage.percent, 3), "percent"),
        ):
            items.append({"name": name, "value": value, "labels": labels, "unit": unit})
    return items


def disk_io() -> list[dict[str, Any]]:
    """Cumulative I/O counters per block device, labelled ``name`` (Telegraf's diskio input)."""
    try:
        counters = psutil.disk_io_counters(perdisk=True) or {}
    except (OSError, RuntimeError):  # no /proc/diskstats (some containers)
        return []
    items: list[dict[str, Any]] = []
    for device, io in sorted(counters.items()):
        if device.startswith(IGNORED_DISK_PREFIXES):
            continue
        labels = {"name": device}
        for field_name in ("read_count", "write_count", "read_bytes", "write_bytes", "read_time", "write_time",
                           "busy_time"):
            if hasattr(io, field_name):
                name = {"read_count": "reads", "write_count": "writes", "busy_time": "io_time"}.get(
                    field_name, field_name)
                items.append({"name": f"diskio_{name}", "value": getattr(io, field_name), "labels": labels})
    return items


def net_io() -> list[dict[str, Any]]:
    """Cumulative counters per network interface, labelled ``interface`` (Telegraf's net input)."""
    try:
        counters = psutil.net_io_counters(pernic=True) or {}
    except OSError:
        return []
    items: list[dict[str, Any]] = []
    for interface, io in sorted(counters.items()):
        labels = {"interface": interface}
        for name, value in (
            ("bytes_sent", io.bytes_sent), ("bytes_recv", io.bytes_recv),
            ("packets_sent", io.packets_sent), ("packets_recv", io.packets_recv),
            ("err_in", io.errin), ("err_out", io.errout), ("drop_in", io.dropin), ("drop_out", io.dropout),
        ):
            items.append({"name": f"net_{name}", "value": value, "labels": labels})
    return items
