"""Rate limits: per caller on the bulk-retry endpoint, per client IP on the token endpoint.

Rates are read from settings at request time (REDRIVE_BULK_RETRY_RATE, REDRIVE_TOKEN_RATE, e.g.
"30/min"), so a deployment or a test can change them. Counters live in Django's cache: with the
default per-process cache each web process counts on its own; configure a shared cache (Redis)
to make the limit global across processes.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class BulkRetryThrottle(SimpleRateThrottle):
    scope = "bulk_retry"
    default_rate = "30/min"

    def get_rate(self) -> str:
        return getattr(settings, "REDRIVE_BULK_RETRY_RATE", self.default_rate)

    def get_cache_key(self, request, view) -> str | None:
        actor = getattr(view, "actor", None)
        ident = actor.label if actor is not None else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class TokenThrottle(SimpleRateThrottle):
    scope = "auth_token"
    default_rate = "30/min"

    def get_rate(self) -> str:
        return getattr(settings, "REDRIVE_TOKEN_RATE", self.default_rate)

    def get_cache_key(self, request, view) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
