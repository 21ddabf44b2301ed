"""Which events a rule's conditions let through (kinds/automations/definition.py): every
condition must hold of the event's data; a missing field holds only for the negative operators."""

from __future__ import annotations

import pytest

from executions.errors import InvalidInput
from executions.kinds.automations.definition import clean_conditions, matches

EVENT = {"ticket": {"priority": "urgent", "tags": ["vip", "billing"], "amount": 120}, "n": [5]}


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ({"field": "ticket.priority", "value": "urgent"}, True),
        ({"field": "ticket.priority", "operator": "equals", "value": "low"}, False),
        ({"field": "ticket.priority", "operator": "not_equals", "value": "low"}, True),
        ({"field": "ticket.priority", "operator": "in", "value": ["urgent", "high"]}, True),
        ({"field": "ticket.priority", "operator": "not_in", "value": ["urgent"]}, False),
        ({"field": "ticket.tags", "operator": "contains", "value": "vip"}, True),
        ({"field": "ticket.priority", "operator": "contains", "value": "gen"}, True),
        ({"field": "ticket.amount", "operator": "contains", "value": 1}, False),
        ({"field": "ticket.amount", "operator": "gt", "value": 100}, True),
        ({"field": "ticket.amount", "operator": "lte", "value": 100}, False),
        ({"field": "ticket.priority", "operator": "gt", "value": 1}, False),  # not comparable
        ({"field": "n.0", "operator": "gte", "value": 5}, True),
        ({"field": "ticket.owner", "operator": "exists", "value": False}, True),
        ({"field": "ticket.owner", "operator": "exists"}, False),
        ({"field": "ticket.owner", "operator": "equals", "value": None}, False),
        ({"field": "ticket.owner", "operator": "not_equals", "value": "x"}, True),
        ({"field": "ticket.owner", "operator": "not_in", "value": ["x"]}, True),
    ],
)
def test_a_condition_holds_of_an_event_or_not(condition, holds) -> None:
    assert matches(clean_conditions([condition]), EVENT) is holds


def test_all_conditions_must_hold() -> None:
    both = [
        {"field": "ticket.priority", "value": "urgent"},
        {"field": "ticket.amount", "operator": "lt", "value": 100},
    ]
    assert not matches(clean_conditions(both), EVENT)
    assert matches([], EVENT)


@pytest.mark.parametrize(
    ("conditions", "field"),
    [
        ("x", "conditions"),
        ([1], "conditions[0]"),
        ([{"field": "a..b", "value": 1}], "conditions[0].field"),
        ([{"field": "a", "operator": "in", "value": "x"}], "conditions[0].value"),
        ([{"field": "a", "operator": "exists", "value": "yes"}], "conditions[0].value"),
    ],
)
def test_a_bad_condition_names_its_field(conditions, field) -> None:
    with pytest.raises(InvalidInput) as raised:
        clean_conditions(conditions)
    assert raised.value.field == field and raised.value.message.startswith(field)
