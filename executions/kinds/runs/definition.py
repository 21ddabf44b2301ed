"""A saved workflow's definition (seed 004's `/v1/workflows`): what is valid when saved, its
`{{node.field}}` references, and the inputs a run of it takes.

    {"nodes": {"root": {"type": "trigger"},
               "total": {"type": "code", "code": "return {sum: payload.a + payload.b};",
                         "params": {"a": "{{root.a}}", "b": 2}, "dependsOn": ["root"]},
               "post": {"type": "http", "url": "https://api.example.com/totals", "method": "POST",
                        "json": {"sum": "{{total.sum}}"}, "dependsOn": ["total"]}},
     "triggerNodeIds": ["root"],
     "inputSchema": [{"key": "a", "type": "number", "required": true}],
     "variableDefs": []}

A trigger node (listed in triggerNodeIds) runs nothing: its output is the run's inputs. Every other
node is one unit of work (executions/work) of its `type`: `code` (JavaScript), `http` or `handler`;
`dependsOn` lists the nodes it runs after; `optional: true` lets the run end `partial` if it fails.

References: `{{node.path}}` in a node's `params`, `url`, `headers`, `body` or `json` is replaced,
when the node runs, by that node's output at `path` (`{{fetch.json.items.0.id}}`; `{{node}}` is
the whole output). A trigger's id, and `root` whatever the trigger is called (as the seed says), is
the run's inputs. In `params` and `json` a string that is exactly one reference takes the value as
it is (a number stays a number); elsewhere the value is written into the text (objects as JSON, in
a url percent-encoded). When saved, a reference must name a node upstream of its own (through
`dependsOn`) or an input the inputSchema declares, and a url's scheme and host are written out.
A code node's JavaScript is never templated: it reads its resolved `params` as `payload` (without
`params`, the outputs of the nodes it depends on, by id).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from ... import work
from ...errors import InvalidInput

TRIGGER = "trigger"
ROOT = "root"  # the seed's alias of the trigger that fired
NODE_TYPES = {"code": "javascript", "http": "http", "handler": "handler"}
WORK_KEYS = ("code", "url", "command", "handler")
# Where references are resolved; in the first two a whole-string reference keeps its type.
REFERABLE = ("params", "json", "url", "headers", "body")
TYPED = ("params", "json")
DEFINITION_KEYS = ("nodes", "triggerNodeIds", "inputSchema", "variableDefs", "blockExpansions")
INPUT_TYPES = {
    "string": str,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
}
MAX_NODES = 100
MAX_INPUTS = 100
NODE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
INPUT_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
REFERENCE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
REFERENCE_BODY = re.compile(r"^\s*([A-Za-z0-9_-]{1,64})((?:\.[^.\s{}]+)*)\s*$")
# A url whose references all come after its host: the host is checked when saved.
URL_HEAD = re.compile(r"^https?://[^/?#{}]+[/?#]", re.IGNORECASE)


class Unresolved(Exception):
    """A reference that names nothing in the run (a field the upstream output does not have)."""


def _at(where: str, message: str) -> InvalidInput:
    """The error at `where`, its message starting with the field: "inputs.qty must be ..."."""
    joined = " " if message.startswith(("is ", "must ", "has ", "lists ")) else ": "
    return InvalidInput(f"{where}{joined}{message}", field=where)


# --- saving ---------------------------------------------------------------------------------------


def clean(definition: Any, where: str = "definition") -> dict:
    """The definition as it is saved, or InvalidInput whose message starts with the field it names
    (`definition.nodes.charge.url: ...`)."""
    if not isinstance(definition, dict):
        raise _at(where, "must be an object with nodes and triggerNodeIds")
    for key in definition:
        if key not in DEFINITION_KEYS:
            raise _at(
                f"{where}.{key}", f"is not a field of a definition ({', '.join(DEFINITION_KEYS)})"
            )
    nodes_at = f"{where}.nodes"
    nodes = definition.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        raise _at(nodes_at, "must be an object of nodes by id, with at least one")
    if len(nodes) > MAX_NODES:
        raise _at(nodes_at, f"has more than {MAX_NODES} nodes")
    for node_id in nodes:
        if not NODE_ID.fullmatch(node_id):
            raise _at(nodes_at, f"node id {node_id!r} must be 1 to 64 letters, digits, '_' or '-'")
    triggers = _triggers(definition.get("triggerNodeIds"), nodes, f"{where}.triggerNodeIds")
    schema = _input_schema(definition.get("inputSchema", []), f"{where}.inputSchema")
    cleaned = {
        node_id: _node(node_id, node, nodes, triggers, f"{nodes_at}.{node_id}")
        for node_id, node in nodes.items()
    }
    _acyclic(cleaned, nodes_at)
    declared = {item["key"] for item in schema}
    for node_id, node in cleaned.items():
        _check_references(node_id, node, cleaned, triggers, declared, f"{nodes_at}.{node_id}")
    variable_defs = definition.get("variableDefs", [])
    if not isinstance(variable_defs, list) or not all(isinstance(v, dict) for v in variable_defs):
        raise _at(f"{where}.variableDefs", "must be a list of objects")
    # Accepted as a snapshot carries it, but not kept: the seed sets it on run snapshots only.
    if not isinstance(definition.get("blockExpansions", {}), dict):
        raise _at(f"{where}.blockExpansions", "must be an object")
    return {
        "nodes": cleaned,
        "triggerNodeIds": triggers,
        "inputSchema": schema,
        "variableDefs": variable_defs,
    }


def _triggers(value: Any, nodes: dict, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _at(where, 'must be a non-empty list of node ids (e.g. ["root"])')
    for index, node_id in enumerate(value):
        if not isinstance(node_id, str) or node_id not in nodes:
            raise _at(f"{where}[{index}]", f"{node_id!r} is not a node of this definition")
    if len(set(value)) != len(value):
        raise _at(where, "lists a node twice")
    if len(value) > 1 and ROOT in value:
        # "root" is the alias of whichever trigger fired: not a trigger id of its own then.
        raise _at(where, "a workflow with several triggers cannot call one of them 'root'")
    return list(value)


def _input_schema(value: Any, where: str) -> list[dict]:
    if not isinstance(value, list):
        raise _at(where, "must be a list of {key, type, required, description}")
    if len(value) > MAX_INPUTS:
        raise _at(where, f"has more than {MAX_INPUTS} inputs")
    out, seen = [], set()
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(item, dict):
            raise _at(at, "must be an object with key and type")
        for name in item:
            if name not in ("key", "type", "required", "description"):
                raise _at(
                    f"{at}.{name}", "is not a field of an input (key, type, required, description)"
                )
        key = item.get("key")
        if not isinstance(key, str) or not INPUT_KEY.fullmatch(key):
            raise _at(f"{at}.key", "must be 1 to 64 letters, digits, '_' or '-', not a digit first")
        if key in seen:
            raise _at(f"{at}.key", f"{key!r} is declared twice")
        seen.add(key)
        kind = item.get("type", "string")
        if not isinstance(kind, str) or kind not in INPUT_TYPES:
            raise _at(f"{at}.type", f"must be one of {', '.join(INPUT_TYPES)}")
        required = item.get("required", False)
        if not isinstance(required, bool):
            raise _at(f"{at}.required", "must be true or false")
        description = item.get("description", "")
        if not isinstance(description, str):
            raise _at(f"{at}.description", "must be a string")
        out.append({"key": key, "type": kind, "required": required, "description": description})
    return out


def _node(node_id: str, node: Any, nodes: dict, triggers: list[str], where: str) -> dict:
    if not isinstance(node, dict):
        raise _at(where, "must be an object")
    depends = node.get("dependsOn", [])
    if not isinstance(depends, list):
        raise _at(f"{where}.dependsOn", "must be a list of node ids")
    for index, dep in enumerate(depends):
        if not isinstance(dep, str) or dep not in nodes:
            raise _at(f"{where}.dependsOn[{index}]", f"{dep!r} is not a node of this definition")
        if dep == node_id:
            raise _at(f"{where}.dependsOn[{index}]", "a node cannot depend on itself")
    if "optional" in node and not isinstance(node["optional"], bool):
        raise _at(f"{where}.optional", "must be true or false")
    kind = node.get("type")
    if node_id in triggers:
        if kind not in (None, TRIGGER):
            raise _at(f"{where}.type", "a node in triggerNodeIds is of type trigger")
        if depends:
            raise _at(f"{where}.dependsOn", "a trigger node depends on no other node")
        if work_key := next((key for key in WORK_KEYS if key in node), None):
            raise _at(
                f"{where}.{work_key}", "a trigger node runs no work: its output is the run's inputs"
            )
        return {**node, "type": TRIGGER, "dependsOn": []}
    if kind == TRIGGER:
        raise _at(f"{where}.type", "a trigger node must be listed in triggerNodeIds")
    if not isinstance(kind, str) or kind not in NODE_TYPES:
        raise _at(f"{where}.type", f"must be one of {', '.join(NODE_TYPES)} (or trigger)")
    if "params" in node and not isinstance(node["params"], dict):
        raise _at(f"{where}.params", "must be an object")
    _check_url_head(node, where)
    try:
        # References stand in as plain text: their values are only known when the node runs.
        work.validate(_without_references(node), where=where, kinds=(NODE_TYPES[kind],))
    except InvalidInput as exc:
        raise _named(exc, where) from None
    return {**node, "dependsOn": list(dict.fromkeys(depends))}


def _named(exc: InvalidInput, where: str) -> InvalidInput:
    """work.validate's error with a message that starts with the whole field path."""
    field = exc.field or where
    leaf = re.split(r"[.\[]", field)[-1]
    if exc.message.startswith(field):
        message = exc.message
    elif exc.message.startswith(f"{leaf} "):
        message = field + exc.message[len(leaf) :]
    else:
        message = f"{field}: {exc.message}"
    return InvalidInput(message, field=field)


def _check_url_head(node: dict, where: str) -> None:
    url = node.get("url")
    if isinstance(url, str) and "{{" in url and not URL_HEAD.match(url.split("{{", 1)[0]):
        raise _at(
            f"{where}.url",
            "a reference may fill a url's path or query only: write its scheme and host out",
        )


def _without_references(node: dict) -> dict:
    return {
        key: _map_strings(value, lambda s: REFERENCE.sub("ref", s)) if key in REFERABLE else value
        for key, value in node.items()
    }


def _map_strings(value: Any, change) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_map_strings(v, change) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, change) for k, v in value.items()}
    return value


def _acyclic(nodes: dict, where: str) -> None:
    done: set[str] = set()

    def visit(node_id: str, path: tuple[str, ...]) -> None:
        if node_id in done:
            return
        if node_id in path:
            cycle = " -> ".join((*path[path.index(node_id) :], node_id))
            raise _at(
                f"{where}.{node_id}.dependsOn",
                f"the nodes depend on each other in a cycle ({cycle})",
            )
        for dep in nodes[node_id]["dependsOn"]:
            visit(dep, (*path, node_id))
        done.add(node_id)

    for node_id in nodes:
        visit(node_id, ())


def upstream(nodes: dict, node_id: str) -> set[str]:
    """Every node `node_id` runs after, directly or through others."""
    seen: set[str] = set()
    todo = list(nodes[node_id].get("dependsOn", []))
    while todo:
        dep = todo.pop()
        if dep not in seen and dep in nodes:
            seen.add(dep)
            todo.extend(nodes[dep].get("dependsOn", []))
    return seen


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")


def _parse(body: str, where: str) -> tuple[str, list[str]]:
    match = REFERENCE_BODY.match(body)
    if not match:
        if body.strip().startswith("$"):
            raise _at(where, f"{{{{{body}}}}}: variables are not supported; reference a node")
        raise _at(where, f"{{{{{body}}}}} is not a reference: write {{{{node.field}}}}")
    path = match.group(2)
    return match.group(1), path.split(".")[1:] if path else []


def _check_references(
    node_id: str, node: dict, nodes: dict, triggers: list[str], declared: set[str], where: str
) -> None:
    above = upstream(nodes, node_id)
    for key in REFERABLE:
        if key not in node:
            continue
        for path, text in _strings(node[key], f"{where}.{key}"):
            for match in REFERENCE.finditer(text):
                target, fields = _parse(match.group(1), path)
                ref = f"{{{{{match.group(1).strip()}}}}}"
                if target == ROOT or target in triggers:
                    if fields and fields[0] not in declared:
                        raise _at(
                            path,
                            f"{ref} names input {fields[0]!r}, which inputSchema does not declare",
                        )
                elif target not in nodes:
                    raise _at(path, f"{ref} references unknown node {target!r}")
                elif target not in above:
                    raise _at(
                        path,
                        f"{ref} references node {target!r}, which is not upstream of {node_id!r} "
                        "(add it to dependsOn, directly or through another node)",
                    )


# --- starting a run -------------------------------------------------------------------------------


def check_inputs(definition: dict, inputs: Any, where: str = "inputs") -> dict:
    """The run's inputs against the definition's inputSchema (its own subset of JSON Schema: a
    type per key, required or not; no other keys), or InvalidInput naming the input."""
    if not isinstance(inputs, dict):
        raise _at(where, "must be an object of the workflow's inputs by key")
    schema = {item["key"]: item for item in definition.get("inputSchema") or []}
    for key in inputs:
        if key not in schema:
            raise _at(f"{where}.{key}", "is not an input of this workflow (see its inputSchema)")
    for key, item in schema.items():
        value = inputs.get(key)
        if value is None:
            if item.get("required"):
                raise _at(f"{where}.{key}", "is required")
            continue
        kind = item.get("type", "string")
        expected = INPUT_TYPES.get(kind, object)
        if isinstance(value, bool) and kind != "boolean" or not isinstance(value, expected):
            raise _at(f"{where}.{key}", f"must be a {kind}")
    return inputs


# --- running a node -------------------------------------------------------------------------------


def resolve(node: dict, outputs: dict, inputs: dict, triggers: list[str]) -> dict:
    """The node with its references replaced by the values they name now: `outputs` by node id
    (earlier nodes', and those carried over from the run a retry resumes), `inputs` for a
    trigger or `root`. Unresolved when a value is not there."""

    def value_of(body: str) -> Any:
        match = REFERENCE_BODY.match(body)
        if not match:
            raise Unresolved(f"{{{{{body}}}}} is not a reference")
        target, path = match.group(1), match.group(2).split(".")[1:] if match.group(2) else []
        if target == ROOT or target in triggers:
            value: Any = inputs
        elif target in outputs:
            value = outputs[target]
        else:
            raise Unresolved(f"{{{{{body.strip()}}}}}: node {target!r} has no output")
        for step in path:
            if isinstance(value, dict) and step in value:
                value = value[step]
            elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
                value = value[int(step)]
            else:
                raise Unresolved(
                    f"{{{{{body.strip()}}}}}: the output of {target!r} has no {step!r}"
                )
        return value

    def as_text(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value)

    def substitute(key: str):
        def change(text: str) -> Any:
            whole = REFERENCE.fullmatch(text)
            if whole and key in TYPED:
                return value_of(whole.group(1))
            if key == "url":
                return REFERENCE.sub(lambda m: quote(as_text(value_of(m.group(1))), safe=""), text)
            return REFERENCE.sub(lambda m: as_text(value_of(m.group(1))), text)

        return change

    return {
        key: _map_strings(value, substitute(key)) if key in REFERABLE else value
        for key, value in node.items()
    }


# --- a run's snapshot: what any run's definition must be to run (the model's clean(), the demo) ---

# A node is a handler, an HTTP request or JavaScript (commands are for jobs).
WORK_KINDS = ("handler", "http", "javascript")
# What a node holds besides its unit of work.
NODE_KEYS = ("dependsOn", "optional", "type", "name", "label", "position")


def is_unit(node: dict) -> bool:
    """A node that runs work (a trigger node without any only hands on the run's inputs)."""
    return any(key in node for key in WORK_KEYS)


def validate_definition(definition: Any, where: str = "workflowDefinition") -> dict:
    """A run's workflow definition {"nodes": {id: node}, "triggerNodeIds": [...], ...}: its
    nodes' dependencies name nodes of it, and each node that runs work is a valid unit
    (executions.work.validate); InvalidInput naming the field (`...nodes.fetch.url`) otherwise.
    Looser than `clean` (a saved workflow through the API): runs snapshot older shapes too."""
    if not isinstance(definition, dict):
        raise InvalidInput("the workflow definition must be an object", field=where)
    nodes = definition.get("nodes", {})
    if not isinstance(nodes, dict):
        raise InvalidInput("nodes must be an object of node ids to nodes", field=f"{where}.nodes")
    triggers = definition.get("triggerNodeIds") or []
    if not isinstance(triggers, list) or any(t not in nodes for t in triggers):
        raise InvalidInput(
            "triggerNodeIds must list ids of its nodes", field=f"{where}.triggerNodeIds"
        )
    triggers = triggers or [ROOT]  # as runs/run.py reads it
    for node_id, node in nodes.items():
        at = f"{where}.nodes.{node_id}"
        if not isinstance(node, dict):
            raise InvalidInput("a node must be an object", field=at)
        depends = node.get("dependsOn", [])
        if not isinstance(depends, list) or any(d not in nodes or d == node_id for d in depends):
            raise InvalidInput(
                "dependsOn must list the ids of other nodes", field=f"{at}.dependsOn"
            )
        if is_unit(node) or node_id not in triggers:
            work.validate(_without_references(_unit(node)), where=at, kinds=WORK_KINDS)
    return definition


def _unit(node: dict) -> dict:
    return {key: value for key, value in node.items() if key not in NODE_KEYS}
