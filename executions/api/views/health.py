"""Health endpoints for load balancers and orchestrators: no authentication."""

from __future__ import annotations

import logging

from django.db import connection
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from ..base import ApiView
from ..serializers import redrive as rd

log = logging.getLogger("redrive.api")


class HealthApi(ApiView):
    authenticated = False

    @extend_schema(
        operation_id="health",
        summary="Readiness: the web process and its database",
        tags=["health"],
        auth=[],
        responses={
            200: rd.HealthSerializer,
            503: OpenApiResponse(rd.HealthSerializer, description="database unavailable"),
        },
    )
    def get(self, request: Request):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception:  # any failure to reach the database means "not ready"
            log.warning("health check: database unavailable", exc_info=True)
            return Response({"status": "unavailable", "database": "unavailable"}, status=503)
        return Response({"status": "ok", "database": "ok"})


class LiveApi(ApiView):
    authenticated = False

    @extend_schema(
        operation_id="healthLive",
        summary="Liveness: the web process answers (no database access)",
        tags=["health"],
        auth=[],
        responses={200: rd.HealthSerializer},
    )
    def get(self, request: Request):
        return Response({"status": "ok"})
