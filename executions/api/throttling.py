"""Rate limits: per caller on the bulk-retry endpoint, per client IP on the token endpoint.

Rates are read from settings at request time (REDRIVE_BULK_RETRY_RATE, REDRIVE_TOKEN_RATE, e.g.
"30/min"), so a deployment or a test can change them. Counters live in Django's cache: Redis,
shared by every web process, when REDIS_URL is set; otherwise each process counts on its own.

The client's address is executions.client_ip's (X-Forwarded-For only from trusted proxies), not
DRF's get_ident, which believes the header from anyone unless NUM_PROXIES is set.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from executions.client_ip import client_ip


class ClientIpThrottle(SimpleRateThrottle):
    def get_ident(self, request) -> str:
        return client_ip(request) or "unknown"


class BulkRetryThrottle(ClientIpThrottle):
    scope = "bulk_retry"
    default_rate = "30/min"

    def get_rate(self) -> str:
        return getattr(settings, "REDRIVE_BULK_RETRY_RATE", self.default_rate)

    def get_cache_key(self, request, view) -> str | None:
        actor = getattr(view, "actor", None)
        ident = actor.label if actor is not None else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class TokenThrottle(ClientIpThrottle):
    scope = "auth_token"
    default_rate = "30/min"

    def get_rate(self) -> str:
        return getattr(settings, "REDRIVE_TOKEN_RATE", self.default_rate)

    def get_cache_key(self, request, view) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
