"""Checking a run's workflow definition (its nodes) when it is saved (not when it runs)."""

from __future__ import annotations

from typing import Any

from ... import work
from ...errors import InvalidInput
from ..base import WORK_KEYS

# A node is a handler, an HTTP request or JavaScript (commands are for jobs).
WORK_KINDS = ("handler", "http", "javascript")


def is_unit(node: dict) -> bool:
    """A node that runs work (a trigger node without any only hands on the run's inputs)."""
    return "handler" in node or any(key in node for key in WORK_KEYS)


def validate_definition(definition: Any, where: str = "workflowDefinition") -> dict:
    """A workflow definition {"nodes": {id: node}, "triggerNodeIds": [...], ...}: its nodes'
    dependencies name nodes of it, and each node that runs work is a valid unit
    (executions.work.validate); InvalidInput naming the field (`...nodes.fetch.url`) otherwise."""
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
    triggers = triggers or ["root"]  # as runs/run.py reads it
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
            work.validate(_unit(node), where=at, kinds=WORK_KINDS)
    return definition


# What a node holds besides its unit of work.
NODE_KEYS = ("dependsOn", "optional", "type", "name", "label", "position")


def _unit(node: dict) -> dict:
    return {key: value for key, value in node.items() if key not in NODE_KEYS}
