from __future__ import annotations

from django.contrib.auth.views import LogoutView
from django.urls import path, re_path

from . import views, webhooks, workers

KIND = r"(?P<kind>[a-z_]{1,32})"
ID = r"(?P<object_id>[A-Za-z0-9_-]{1,64})"

urlpatterns = [
    path("login/", views.ConsoleLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("", views.inbox, name="inbox"),
    path("new/", views.inbox_new, name="inbox_new"),
    path("groups/", views.groups, name="groups"),
    path("chart/", views.chart, name="chart"),
    re_path(rf"^executions/{KIND}/{ID}/$", views.detail, name="detail"),
    re_path(rf"^executions/{KIND}/{ID}/live/$", views.live, name="live"),
    re_path(rf"^executions/{KIND}/{ID}/retry/$", views.retry, name="retry"),
    re_path(rf"^executions/{KIND}/{ID}/retry/review/$", views.retry_review, name="retry_review"),
    re_path(rf"^executions/{KIND}/{ID}/ignore/$", views.ignore, name="ignore"),
    re_path(rf"^executions/{KIND}/{ID}/reopen/$", views.reopen, name="reopen"),
    path("groups/<str:fingerprint>/ignore/", views.group_ignore, name="group_ignore"),
    path("groups/<str:fingerprint>/reopen/", views.group_reopen, name="group_reopen"),
    path("bulk/preview/", views.bulk_preview, name="bulk_preview"),
    path("bulk/start/", views.bulk_start, name="bulk_start"),
    path("bulk/<uuid:bulk_id>/", views.bulk, name="bulk"),
    path("bulk/<uuid:bulk_id>/cancel/", views.bulk_cancel, name="bulk_cancel"),
    path("tenant/", views.switch_tenant, name="switch_tenant"),
    path("keys/", views.api_keys, name="api_keys"),
    path("keys/<str:key_id>/revoke/", views.revoke_api_key, name="revoke_api_key"),
    path("audit/", views.audit, name="audit"),
    path("webhooks/", webhooks.webhooks, name="webhooks"),
    re_path(
        r"^webhooks/(?P<sub_id>[0-9a-f-]{36})/(?P<action>rotate|delete|pause|resume)/$",
        webhooks.webhook_action,
        name="webhook_action",
    ),
    path("workers/", workers.workers, name="workers"),
    path("workers/pause/", workers.pause_queue, name="pause_queue"),
    path("workers/resume/", workers.resume_queue, name="resume_queue"),
]
