"""What jobs show in the console and link to in the API (kinds/shown.py)."""

from __future__ import annotations

from ..shown import Shown


class JobShown(Shown):
    short = "Job"
    clone_parent = "retry_of"
    row_fields = ("job_id", "updated_at", "operation_type", "target_hostname", "retry_of_id")
    row_related = ("retried_by",)
    retried_by_fields = ("retried_by__target_hostname",)  # what the clone waits for
    detail_related = ("retry_of", "retried_by")
    # A job can wait long for its host: the timeline shows when it was made, and took from its run.
    made_field, started_field = "created_at", "started_at"
    has_logs = True
    asks_host = waits_for_host = True
    input_label = "Operation"
    input_field = "operation"
    output_field = "result"
    api_url_names = ("api-job", "api-job-retry")

    def retried_message(self, outcome):
        host = outcome.obj.target_hostname
        # "_any" is the API's word; an operator reads "any host".
        where = "any host" if host == outcome.obj.ANY_HOST else host
        return f"Retried as job {outcome.new_id} on {where}"

    def extras(self, obj):
        return {"events": list(obj.events.all())}
