"""Elasticsearch paths at the site root, where shippers configured with only a host name send them."""

from __future__ import annotations

from django.urls import path

from apps.logs import elastic

urlpatterns = [
    path("", elastic.site_root, name="site-root"),
    path("_bulk", elastic.bulk, name="es-bulk"),
    path("<str:index>/_bulk", elastic.bulk, name="es-index-bulk"),
    path("_cat/health", elastic.cat_health, name="es-cat-health"),
    path("_cluster/health", elastic.cluster_health, name="es-cluster-health"),
    path("_license", elastic.license_info, name="es-license"),
]
