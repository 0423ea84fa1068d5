"""The TSBS "devops cpu-only" workload as InfluxDB line protocol, generated the way TSBS does it.

TSBS (github.com/timescale/tsbs, pkg/data/usecases/devops) models each host with ten host tags drawn
once from fixed lists and one ``cpu`` measurement with ten fields. Each field is a clamped random walk:
it starts uniform in [0, 100), every tick adds a N(0, 1) step and is clamped to [0, 100]
(``common.CWD(ND(0, 1), 0, 100, rand*100)``), and is written as an int64 (``ToPointAllInt64``, hence
``usage_user=58i``). Lines are time-major: all hosts at t0, then all hosts at t0 + interval, …

One deliberate difference: TSBS starts at 2016-01-01 by default; here the window is the last ``hours``
ending now, because the ingest doors refuse timestamps outside their time window (7 days back by
default) -- an old window would measure the rejection path, not ingest.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# Tag value lists from TSBS pkg/data/usecases/devops/host.go.
REGIONS: dict[str, list[str]] = {
    "us-east-1": ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"],
    "us-west-1": ["us-west-1a", "us-west-1b"],
    "us-west-2": ["us-west-2a", "us-west-2b", "us-west-2c"],
    "eu-west-1": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
    "eu-central-1": ["eu-central-1a", "eu-central-1b"],
    "ap-southeast-1": ["ap-southeast-1a", "ap-southeast-1b"],
    "ap-southeast-2": ["ap-southeast-2a", "ap-southeast-2b"],
    "ap-northeast-1": ["ap-northeast-1a", "ap-northeast-1c"],
    "sa-east-1": ["sa-east-1a", "sa-east-1b", "sa-east-1c"],
}
TEAMS = ["SF", "NYC", "LON", "CHI"]
OSES = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"]
ARCHES = ["x64", "x86"]
ENVIRONMENTS = ["production", "staging", "test"]
RACKS_PER_DATACENTER = 100
SERVICES = 20
SERVICE_VERSIONS = 2
CPU_FIELDS = ("usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait", "usage_irq",
              "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice")


@dataclass(slots=True)
class Workload:
    """Pre-generated request bodies plus what they contain, for the report and the stored-count check."""

    bodies: list[bytes]
    lines: int
    values: int
    hosts: int
    start_ns: int
    end_ns: int

    @property
    def series(self) -> int:
        return self.hosts * len(CPU_FIELDS)


def host_tags(index: int, rng: random.Random) -> str:
    """The ``cpu,hostname=…,…`` prefix of one simulated host (tag order as TSBS writes them)."""
    region = rng.choice(list(REGIONS))
    return (
        f"cpu,hostname=host_{index},region={region},datacenter={rng.choice(REGIONS[region])},"
        f"rack={rng.randrange(RACKS_PER_DATACENTER)},os={rng.choice(OSES)},arch={rng.choice(ARCHES)},"
        f"team={rng.choice(TEAMS)},service={rng.randrange(SERVICES)},"
        f"service_version={rng.randrange(SERVICE_VERSIONS)},service_environment={rng.choice(ENVIRONMENTS)}"
    )


def generate(*, hosts: int, hours: float, interval_s: int, batch_lines: int, end_s: int, seed: int) -> Workload:
    """Build every body up front (the timed phase must only send). Timestamps are in nanoseconds."""
    rng = random.Random(seed)
    gauss = rng.gauss
    prefixes = [host_tags(i, rng) for i in range(hosts)]
    template = [p + " " + ",".join(f"{f}=%di" for f in CPU_FIELDS) + " %d\n" for p in prefixes]
    state = [[rng.random() * 100.0 for _ in CPU_FIELDS] for _ in range(hosts)]
    ticks = int(hours * 3600 // interval_s)
    start_s = end_s - (ticks - 1) * interval_s
    bodies: list[bytes] = []
    chunk: list[str] = []
    lines = 0
    for tick in range(ticks):
        t_ns = (start_s + tick * interval_s) * 1_000_000_000
        for h in range(hosts):
            walk = state[h]
            for i in range(10):
                v = walk[i] + gauss(0.0, 1.0)
                walk[i] = 0.0 if v < 0.0 else 100.0 if v > 100.0 else v
            chunk.append(template[h] % (*walk, t_ns))
            lines += 1
            if len(chunk) == batch_lines:
                bodies.append("".join(chunk).encode())
                chunk = []
    if chunk:
        bodies.append("".join(chunk).encode())
    return Workload(bodies=bodies, lines=lines, values=lines * len(CPU_FIELDS), hosts=hosts,
                    start_ns=start_s * 1_000_000_000, end_ns=(start_s + (ticks - 1) * interval_s) * 1_000_000_000)
