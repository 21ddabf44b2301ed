"""Workflow versions in Cognite's shapes (seed 003's POST /workflows/versions): checking a
version's tasks when it is saved, running one task, and showing tasks and their outputs back in
the shapes the cognite-sdk reads.

A task as saved (Workflow.tasks):
    {"externalId", "type", "parameters", "name", "description", "retries", "timeout" (s),
     "onFailure": "abortWorkflow" | "skipTask", "dependsOn": [externalId, ...],
     "isOptional": onFailure == "skipTask"}

Types: `function` ({"function": {"externalId": <a function's name or id>, "data": ...}}: the
function's current code runs with `data` as its payload; its result is the task's output),
`cdf` ({"cdfRequest": {"resourcePath", "method", "queryParameters", "body",
"requestTimeoutInMillis"}}: a request to Redrive's own API under the project, as the session's
user) and Redrive's own `http` ({"http": {"url", "method", "headers", "body", "timeout"}}) and
`handler` ({"handler": {"name", "params"}}). A string `${workflow.input}`, `${<task>.output}` or
`${<task>.input}` (optionally followed by `.key.key`) anywhere in `data`, `body` or `params` is
replaced by that value when the task runs.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from ... import work
from ...errors import InvalidInput
from ...fingerprints import fingerprint
from ...models import Function, Kind, Tenant
from ..base import UnitFailed, run_unit

TYPES = ("function", "cdf", "http", "handler")
PARAMETER_KEY = {"function": "function", "cdf": "cdfRequest", "http": "http", "handler": "handler"}
ON_FAILURE = ("abortWorkflow", "skipTask")
DEFAULT_RETRIES = 3  # Cognite's
MAX_RETRIES = 10
DEFAULT_TIMEOUT_S = 3600  # Cognite's
MAX_TIMEOUT_S = 86_400
MAX_TASKS = 200
CDF_METHODS = ("GET", "POST", "PUT", "DELETE")
HTTP_KEYS = ("url", "method", "headers", "body", "timeout", "expectStatus")
REFERENCE = re.compile(r"^\$\{([A-Za-z0-9_.\-]+)\}$")


def bad(field: str, message: str) -> InvalidInput:
    # Cognite's error body has only a message: it names the field itself.
    return InvalidInput(f"{field}: {message}", field=field)


def is_typed(task: dict) -> bool:
    """Saved through the API (Cognite's types), not one of seed_demo's handler tasks."""
    return "type" in task and "parameters" in task


# --- checking a version when it is saved ---------------------------------------------------------


def clean_tasks(tenant: Tenant, tasks: Any, where: str) -> list[dict]:
    """The tasks as saved, or InvalidInput naming the first bad field (`where.tasks[2].type`)."""
    field = f"{where}.tasks"
    if not isinstance(tasks, list) or not tasks:
        raise bad(field, "must be a non-empty list of tasks")
    if len(tasks) > MAX_TASKS:
        raise bad(field, f"at most {MAX_TASKS} tasks")
    out: list[dict] = []
    seen: set[str] = set()
    for i, task in enumerate(tasks):
        cleaned = _clean_task(tenant, task, f"{field}[{i}]")
        if cleaned["externalId"] in seen:
            raise bad(f"{field}[{i}].externalId", f"{cleaned['externalId']!r} is used twice")
        seen.add(cleaned["externalId"])
        out.append(cleaned)
    for i, task in enumerate(out):
        for d, dep in enumerate(task["dependsOn"]):
            if dep not in seen:
                raise bad(f"{field}[{i}].dependsOn[{d}].externalId", f"no task {dep!r}")
    _check_acyclic(out, field)
    return out


def _text(value: Any, field: str, maximum: int = 255) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise bad(field, "must be a non-empty text without leading or trailing spaces")
    if len(value) > maximum or "\x00" in value:
        raise bad(field, f"must be at most {maximum} characters, without NUL")
    return value


def _int(value: Any, field: str, default: int, minimum: int, maximum: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise bad(field, f"must be an integer from {minimum} to {maximum}")
    return value


def _clean_task(tenant: Tenant, task: Any, where: str) -> dict:
    if not isinstance(task, dict):
        raise bad(where, "must be an object")
    external_id = _text(task.get("externalId"), f"{where}.externalId")
    task_type = task.get("type")
    if task_type not in TYPES:
        raise bad(f"{where}.type", f"must be one of {', '.join(TYPES)}; got {task_type!r}")
    parameters = task.get("parameters")
    key = PARAMETER_KEY[task_type]
    if not isinstance(parameters, dict) or not isinstance(parameters.get(key), dict):
        raise bad(f"{where}.parameters.{key}", "must be an object")
    parameters = CLEAN[task_type](tenant, parameters, f"{where}.parameters")
    on_failure = task.get("onFailure") or "abortWorkflow"
    if on_failure not in ON_FAILURE:
        raise bad(f"{where}.onFailure", f"must be one of {', '.join(ON_FAILURE)}")
    depends = task.get("dependsOn") or []
    if not isinstance(depends, list):
        raise bad(f"{where}.dependsOn", "must be a list of {externalId}")
    depends_on = []
    for d, dep in enumerate(depends):
        if not isinstance(dep, dict):
            raise bad(f"{where}.dependsOn[{d}]", "must be an object {externalId}")
        depends_on.append(_text(dep.get("externalId"), f"{where}.dependsOn[{d}].externalId"))
    cleaned = {
        "externalId": external_id,
        "type": task_type,
        "parameters": parameters,
        "retries": _int(task.get("retries"), f"{where}.retries", DEFAULT_RETRIES, 0, MAX_RETRIES),
        "timeout": _int(
            task.get("timeout"), f"{where}.timeout", DEFAULT_TIMEOUT_S, 1, MAX_TIMEOUT_S
        ),
        "onFailure": on_failure,
        "isOptional": on_failure == "skipTask",
        "dependsOn": depends_on,
    }
    for optional in ("name", "description"):
        if task.get(optional) is not None:
            limit = 255 if optional == "name" else 500
            value = task[optional]
            if not isinstance(value, str) or len(value) > limit or "\x00" in value:
                raise bad(f"{where}.{optional}", f"must be a text of at most {limit} characters")
            cleaned[optional] = value
    return cleaned


def _check_acyclic(tasks: list[dict], field: str) -> None:
    depends = {t["externalId"]: t["dependsOn"] for t in tasks}
    state: dict[str, int] = {}  # 1: being visited, 2: done

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            cycle = " -> ".join([*path[path.index(node) :], node])
            raise bad(field, f"dependsOn makes a cycle ({cycle})")
        state[node] = 1
        for dep in depends[node]:
            visit(dep, [*path, node])
        state[node] = 2

    for node in depends:
        visit(node, [])


def find_function(tenant_id: Any, reference: str) -> Function | None:
    """A function of the tenant by id, else by name (the newest of that name)."""
    functions = Function.objects.filter(tenant_id=tenant_id)
    return (
        functions.filter(pk=reference).first()
        or functions.filter(name=reference).order_by("-created_at").first()
    )


def _clean_function(tenant: Tenant, parameters: dict, where: str) -> dict:
    function = parameters["function"]
    reference = _text(function.get("externalId"), f"{where}.function.externalId")
    if find_function(tenant.pk, reference) is None:
        raise bad(f"{where}.function.externalId", f"no function named {reference!r}")
    data = function.get("data")
    if data is not None and not isinstance(data, dict | str):
        raise bad(f"{where}.function.data", "must be an object or a text")
    if parameters.get("isAsyncComplete"):
        raise bad(f"{where}.isAsyncComplete", "asynchronous completion is not supported")
    return {
        "function": {"externalId": reference, **({"data": data} if data is not None else {})},
        "isAsyncComplete": False,
    }


def _clean_cdf(tenant: Tenant, parameters: dict, where: str) -> dict:
    request = parameters["cdfRequest"]
    path = _text(request.get("resourcePath"), f"{where}.cdfRequest.resourcePath", 1000)
    if not path.startswith("/") or "?" in path or ".." in path:
        raise bad(f"{where}.cdfRequest.resourcePath", "must be a path starting with /")
    method = request.get("method")
    if method not in CDF_METHODS:
        raise bad(f"{where}.cdfRequest.method", f"must be one of {', '.join(CDF_METHODS)}")
    query = request.get("queryParameters") or {}
    if not isinstance(query, dict):
        raise bad(f"{where}.cdfRequest.queryParameters", "must be an object")
    body = request.get("body") or {}
    if not isinstance(body, dict | str):
        raise bad(f"{where}.cdfRequest.body", "must be an object or a text")
    timeout = _int(
        request.get("requestTimeoutInMillis"),
        f"{where}.cdfRequest.requestTimeoutInMillis",
        10_000,
        1,
        MAX_TIMEOUT_S * 1000,
    )
    return {
        "cdfRequest": {
            "resourcePath": path,
            "method": method,
            "queryParameters": query,
            "body": body,
            "requestTimeoutInMillis": timeout,
        }
    }


def _clean_http(tenant: Tenant, parameters: dict, where: str) -> dict:
    http = parameters["http"]
    unknown = sorted(set(http) - set(HTTP_KEYS))
    if unknown:
        raise bad(f"{where}.http.{unknown[0]}", f"unknown key (allowed: {', '.join(HTTP_KEYS)})")
    try:
        work.validate(_http_unit(http), where=f"{where}.http", kinds=("http",))
    except InvalidInput as exc:
        raise _named(exc, f"{where}.http") from None
    return {"http": http}


def _clean_handler(tenant: Tenant, parameters: dict, where: str) -> dict:
    handler = parameters["handler"]
    unit = {"handler": handler.get("name"), "params": handler.get("params", {})}
    try:
        work.validate(unit, where=f"{where}.handler", kinds=("handler",))
    except InvalidInput as exc:
        field = (exc.field or "").replace(".handler.handler", ".handler.name")
        raise bad(field or f"{where}.handler", exc.message) from None
    return {"handler": {"name": unit["handler"], "params": unit["params"] or {}}}


def _named(exc: InvalidInput, default: str) -> InvalidInput:
    field = exc.field or default
    return exc if exc.message.startswith(field) else bad(field, exc.message)


CLEAN = {
    "function": _clean_function,
    "cdf": _clean_cdf,
    "http": _clean_http,
    "handler": _clean_handler,
}


def _http_unit(http: dict) -> dict:
    """Cognite-style {"body": {...}} is JSON; a text body is sent as it is."""
    unit = {k: v for k, v in http.items() if k != "body"}
    body = http.get("body")
    if isinstance(body, dict | list):
        unit["json"] = body
    elif body is not None:
        unit["body"] = body
    return unit


# --- running one task ----------------------------------------------------------------------------


def resolve(value: Any, scope: dict) -> Any:
    """`${workflow.input}`, `${task.output.key}`: the value it names (None when missing)."""
    if isinstance(value, dict):
        return {k: resolve(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, scope) for v in value]
    if isinstance(value, str) and (match := REFERENCE.match(value)):
        head, *rest = match.group(1).split(".")
        found: Any = scope.get(head)
        for part in rest:
            found = found.get(part) if isinstance(found, dict) else None
        return found
    return value


def task_input(task: dict, scope: dict) -> dict:
    """The task's parameters with its references resolved: what it runs with."""
    return resolve(task["parameters"], scope)


def run_task(tenant_id: Any, task: dict, parameters: dict, ctx: work.WorkContext, run_as: str):
    """(output in the type's Cognite shape, log entries), or UnitFailed."""
    task_type = task["type"]
    if task_type == "function":
        return _run_function(tenant_id, parameters["function"], ctx)
    if task_type == "cdf":
        return _run_cdf(tenant_id, parameters["cdfRequest"], run_as)
    if task_type == "http":
        result, logs = run_unit(Kind.WORKFLOW, _http_unit(parameters["http"]), ctx)
        return {"response": result}, logs
    handler = parameters["handler"]
    unit = {"handler": handler["name"], "params": handler.get("params") or {}}
    result, logs = run_unit(Kind.WORKFLOW, unit, ctx)
    return {"response": result}, logs


def _failed(name: str, error_class: str, message: str, stack: str | None = None) -> UnitFailed:
    columns = {
        "error_message": message,
        "error_stack": stack,
        "fingerprint": fingerprint(Kind.WORKFLOW, name, error_class, message),
    }
    return UnitFailed(columns, [], timed_out=False)


def _run_function(tenant_id: Any, function_params: dict, ctx: work.WorkContext):
    # The functions kind's public runner, right here in this worker: it records a function
    # execution of its own (seen in the functions inbox) with the function's current code.
    from ..functions.run import invoke_function

    reference = function_params["externalId"]
    function = find_function(tenant_id, reference)
    if function is None:
        raise _failed(reference, "FunctionNotFound", f"Function {reference!r} not found")
    call = invoke_function(
        function, function_params.get("data"), invoked_by="trigger", queued=False
    )
    output = {"callId": call.pk, "functionId": function.pk, "response": call.result}
    logs = call.logs or []
    if call.status == "success":
        return output, logs
    message = call.error_message or f"Function {function.name} {call.status}"
    raise UnitFailed(
        {
            "error_message": message,
            "error_stack": call.error_stack,
            "fingerprint": call.fingerprint
            or fingerprint(Kind.WORKFLOW, function.name, "FunctionFailed", message),
        },
        logs,
        timed_out=call.status == "timeout",
        result=output,
    )


def _run_cdf(tenant_id: Any, request: dict, run_as: str):
    """One request to Redrive's own API, in this process, authenticated as the session's user
    (a short-lived token); a status of 400 or more fails the task. Through Django's Client so the
    request passes the same middleware, authentication and permission checks as any client's,
    without the worker knowing the server's address."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from ... import tokens

    tenant = Tenant.objects.get(pk=tenant_id)
    kind, _, name = run_as.partition(":")
    user = (
        get_user_model().objects.filter(username=name, is_active=True).first()
        if kind == "user"
        else None
    )
    if user is None:
        raise _failed(
            "cdf",
            "SessionNotUsable",
            f"cdf tasks run as the user of the session that started the execution; {run_as!r} "
            "is not an active user",
        )
    timeout_s = max(1, request["requestTimeoutInMillis"] // 1000)
    token = tokens.issue(user, tenant, lifetime=timeout_s + 60)
    path = f"/api/v1/projects/{tenant.workflows_project}{request['resourcePath']}"
    if request.get("queryParameters"):
        path += "?" + urlencode(request["queryParameters"], doseq=True)
    body = request.get("body")
    hosts = [h.lstrip(".") for h in settings.ALLOWED_HOSTS if h != "*"]
    client = Client(
        HTTP_HOST=hosts[0] if hosts else "localhost", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    call = getattr(client, request["method"].lower())
    if request["method"] == "GET":
        response = call(path)
    else:
        data = body if isinstance(body, str) else json.dumps(body or {})
        response = call(path, data=data, content_type="application/json")
    try:
        payload: Any = json.loads(response.content or b"null")
    except ValueError:
        payload = response.content.decode(errors="replace")
    output = {"response": payload, "statusCode": response.status_code}
    if response.status_code >= 400:
        message = f"{request['method']} {request['resourcePath']} answered {response.status_code}"
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            message += f": {payload['error'].get('message')}"
        failed = _failed("cdf", f"HTTP{response.status_code}", message)
        failed.result = output
        raise failed
    return output, []


# --- showing tasks back --------------------------------------------------------------------------


def cognite_task(task: dict) -> dict:
    """A saved typed task in Cognite's definition shape."""
    out = {
        "externalId": task["externalId"],
        "type": task["type"],
        "parameters": task["parameters"],
        "retries": task.get("retries", DEFAULT_RETRIES),
        "timeout": task.get("timeout", DEFAULT_TIMEOUT_S),
        "onFailure": task.get("onFailure", "abortWorkflow"),
        "isOptional": bool(task.get("isOptional")),
        "dependsOn": [{"externalId": d} for d in task.get("dependsOn", [])],
    }
    for optional in ("name", "description"):
        if task.get(optional) is not None:
            out[optional] = task[optional]
    return out


def label(task: dict) -> str:
    """What the console shows as the task's work: `function wf-extract`, `http POST https://..`."""
    parameters = task.get("parameters") or {}
    match task.get("type"):
        case "function":
            return f"function {parameters['function']['externalId']}"
        case "cdf":
            request = parameters["cdfRequest"]
            return f"cdf {request['method']} {request['resourcePath']}"
        case "http":
            return f"http {parameters['http'].get('method', 'GET')} {parameters['http']['url']}"
        case _:
            return f"handler {parameters.get('handler', {}).get('name', '')}"


def cognite_output(task: dict, output: Any) -> dict:
    """What the SDK reads as the task's output: a function's {callId, functionId, response},
    a cdf request's {response, statusCode}, our types' {response}."""
    if isinstance(output, dict) and ("response" in output):
        return output
    if task.get("type") == "function":
        return {"callId": None, "functionId": None, "response": output}
    return {"response": output}
