"""The stock reference of a start over HTTP (bench/start.py): Redrive's own settings and
middleware, but a plain Django view instead of Redrive's API, that parses the JSON body and
enqueues one no-op django.tasks task (the database backend). Served by gunicorn with
DJANGO_SETTINGS_MODULE=bench.stock_site, it is what any Django service pays to start one unit of
work on this machine: no key, no validation, no rows of its own."""

import json

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from project.settings import *  # noqa: F403 - the same settings, another URL conf

ROOT_URLCONF = "bench.stock_site"


@csrf_exempt
def enqueue(request):
    from bench.stock_tasks import noop  # the path the workers import it by

    body = json.loads(request.body)
    result = noop.enqueue()
    return JsonResponse({"id": result.id, "n": body.get("n")}, status=202)


def health(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [path("enqueue", enqueue), path("health", health)]
