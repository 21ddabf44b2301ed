from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.templatetags.static import static
from django.urls import include, path
from django.views import defaults

FAVICON = "console/favicon.svg"

urlpatterns = [
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico where a page names no icon (an HTMX fragment opened alone).
    path(
        "favicon.ico",
        lambda request: HttpResponsePermanentRedirect(static(FAVICON)),
        name="favicon",
    ),
    path("", include("executions.api.urls")),
    path("", include("executions.console.urls")),
]


# --- unknown URLs and faults outside a view: JSON under the API prefixes, HTML elsewhere --------
# A client (an SDK, a script) that mistypes a path or talks to a route Redrive does not have must
# get an error body it can parse, in the shape of the product whose prefix it used: the cognite-sdk,
# for one, reads response.json()["error"]["message"]. The console keeps its HTML pages.
# (With DEBUG on, Django shows its technical 404 page instead of handler404, for every path.)

# Longest prefix first: /api/v1/automation is seed 001, the rest of /api/v1 is Cognite's (003).
_API_PREFIXES: tuple[tuple[str, str], ...] = (
    ("/api/functions/", "000"),
    ("/api/v1/automation/", "001"),
    ("/api/v1/", "003"),
    ("/api/", "redrive"),
    ("/job/", "002"),
    ("/v1/", "004"),
)


def api_seed(path_info: str) -> str | None:
    """The seed whose error shape an API path answers in; None for console (HTML) paths."""
    candidate = path_info if path_info.endswith("/") else path_info + "/"
    for prefix, seed in _API_PREFIXES:
        if candidate.startswith(prefix):
            return seed
    return None


def _api_error(request: HttpRequest, seed: str, status: int, message: str) -> JsonResponse:
    from executions.api.errors import error_body
    from executions.middleware import current_request_id

    request_id = getattr(request, "request_id", "") or current_request_id()
    body = error_body(seed, status, message, request_id=request_id)
    return JsonResponse(body, status=status)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    seed = api_seed(request.path_info)
    if seed is None:
        return defaults.page_not_found(request, exception)
    # The path is echoed (bounded) so a caller sees which URL it got wrong, e.g. a base URL
    # with an extra prefix.
    shown = request.path_info if len(request.path_info) <= 200 else request.path_info[:200] + "…"
    return _api_error(request, seed, 404, f"No API endpoint at {request.method} {shown}")


def server_error(request: HttpRequest) -> HttpResponse:
    seed = api_seed(request.path_info)
    if seed is None:
        return defaults.server_error(request)
    request_id = getattr(request, "request_id", "") or "-"
    return _api_error(request, seed, 500, f"Internal server error (request id {request_id})")


handler404 = not_found
handler500 = server_error
