"""Reads over the dependency graph. Closures are one recursive CTE (UNION, not UNION ALL, so a cycle
that slipped in through raw SQL still terminates); path finding for the cycle check is a BFS over the
organization's edges, which are few (hundreds) next to samples or alerts."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from django.db import connection

from apps.hosts.models import Host, NodeRef, Service, ServiceDependency

_CLOSURE_SQL = """
WITH RECURSIVE walk(kind, id) AS (
    SELECT %(kind)s::text, %(id)s::bigint
    UNION
    SELECT CASE WHEN e.{next}_host_id IS NOT NULL THEN 'host' ELSE 'service' END,
           COALESCE(e.{next}_host_id, e.{next}_service_id)
    FROM {table} e
    JOIN walk w ON (w.kind = 'host' AND e.{this}_host_id = w.id)
                OR (w.kind = 'service' AND e.{this}_service_id = w.id)
    WHERE e.organization_id = %(org)s
)
SELECT kind, id FROM walk WHERE NOT (kind = %(kind)s AND id = %(id)s)
"""


def _closure(node: Host | Service, *, towards: str) -> set[NodeRef]:
    this, nxt = ("downstream", "upstream") if towards == "upstream" else ("upstream", "downstream")
    sql = _CLOSURE_SQL.format(table=ServiceDependency._meta.db_table, this=this, next=nxt)
    start = NodeRef.of(node)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"kind": start.kind, "id": start.id, "org": node.organization_id})
        return {NodeRef(kind, pk) for kind, pk in cursor.fetchall()}


def upstream_closure(node: Host | Service) -> set[NodeRef]:
    """Every node `node` depends on, directly or transitively (what can take it down)."""
    return _closure(node, towards="upstream")


def upstream_closures(organization_id: int, nodes: Iterable[NodeRef]) -> dict[NodeRef, set[NodeRef]]:
    """:func:`upstream_closure` of many nodes of one organization: its edges loaded once (one query),
    each closure walked in memory. Same answer: every node reachable upstream, never the start itself."""
    starts = set(nodes)
    if not starts:
        return {}
    upstream_of: dict[NodeRef, list[NodeRef]] = {}
    edges = ServiceDependency.objects.filter(organization_id=organization_id).values_list(
        "upstream_host_id", "upstream_service_id", "downstream_host_id", "downstream_service_id")
    for up_host, up_service, down_host, down_service in edges:
        up = NodeRef("host", up_host) if up_host else NodeRef("service", up_service)
        down = NodeRef("host", down_host) if down_host else NodeRef("service", down_service)
        upstream_of.setdefault(down, []).append(up)
    closures: dict[NodeRef, set[NodeRef]] = {}
    for start in starts:
        seen: set[NodeRef] = set()
        queue = deque(upstream_of.get(start, ()))
        while queue:
            node = queue.popleft()
            if node not in seen:
                seen.add(node)
                queue.extend(upstream_of.get(node, ()))
        seen.discard(start)
        closures[start] = seen
    return closures


def downstream_closure(node: Host | Service) -> set[NodeRef]:
    """Every node that depends on `node`, directly or transitively (whose alerts to inhibit when it fails)."""
    return _closure(node, towards="downstream")


def find_path(organization_id: int, start: NodeRef, goal: NodeRef) -> list[NodeRef] | None:
    """The shortest chain start → … → goal following upstream → downstream edges, or None."""
    adjacency: dict[NodeRef, list[NodeRef]] = {}
    edges = ServiceDependency.objects.for_org(organization_id).values_list(
        "upstream_host_id", "upstream_service_id", "downstream_host_id", "downstream_service_id")
    for up_host, up_service, down_host, down_service in edges:
        up = NodeRef("host", up_host) if up_host else NodeRef("service", up_service)
        down = NodeRef("host", down_host) if down_host else NodeRef("service", down_service)
        adjacency.setdefault(up, []).append(down)
    previous: dict[NodeRef, NodeRef | None] = {start: None}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        if current == goal:
            path = [current]
            while previous[path[-1]] is not None:
                path.append(previous[path[-1]])  # type: ignore[arg-type]
            return path[::-1]
        for following in adjacency.get(current, []):
            if following not in previous:
                previous[following] = current
                queue.append(following)
    return None


def node_labels(nodes: list[NodeRef]) -> dict[NodeRef, str]:
    """Display names for nodes: a host's name, a service's name."""
    host_ids = [n.id for n in nodes if n.kind == "host"]
    service_ids = [n.id for n in nodes if n.kind == "service"]
    labels = {NodeRef("host", pk): name for pk, name in Host.objects.filter(pk__in=host_ids).values_list("pk", "name")}
    labels.update({NodeRef("service", pk): name
                   for pk, name in Service.objects.filter(pk__in=service_ids).values_list("pk", "name")})
    return labels


def cycle_error(organization_id: int, upstream: Host | Service, downstream: Host | Service) -> str | None:
    """The message for an edge upstream → downstream that would close a cycle, or None when it would not:
    "db-1 → api → db-1 would form a cycle." (the new edge first, then the existing path back)."""
    path = find_path(organization_id, NodeRef.of(downstream), NodeRef.of(upstream))
    if path is None:
        return None
    labels = node_labels(path)
    return " → ".join([upstream.name, *(labels.get(node, "?") for node in path)]) + " would form a cycle."
