"""What the serializers of every seed share: output fields (epoch ms, objects, log entries,
attempts) and the input side (Input, Param and its kinds), which validates request bodies and query
strings with is_valid(); api/errors.py turns a ValidationError into the seed's error shape.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, ClassVar

from django.core.validators import MaxValueValidator, MinValueValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.fields import empty

from executions import validation
from executions.errors import InvalidInput
from executions.models import (
    Attempt,
)
from executions.work import secrets

from ..errors import OWN

# --- shared fields ------------------------------------------------------------------------------


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 0, "nullable": True})
class EpochMsField(serializers.Field):
    """Seed 003's times: milliseconds since the epoch."""

    def to_representation(self, value) -> int:
        return int(value.timestamp() * 1000)


@extend_schema_field({"type": "object", "additionalProperties": {}, "nullable": True})
class ObjectOrNullField(serializers.Field):
    """A JSON object or null: a non-object JSON value is wrapped as {"value": ...} (the mudbase
    SDK types payload and result as objects)."""

    def to_representation(self, value) -> dict | None:
        if value is None or isinstance(value, dict):
            return value
        return {"value": value}


@extend_schema_field({"type": "object", "additionalProperties": {}})
class ObjectField(serializers.Field):
    def to_representation(self, value) -> dict:
        return value if isinstance(value, dict) else {}


class DefinitionField(ObjectField):
    """A stored definition (units of work) shown back: its secret values masked."""

    def to_representation(self, value) -> dict:
        return secrets.masked_deep(super().to_representation(value))


def error_class(stack: str | None) -> str | None:
    """'ValueError' from a Python traceback's last line."""
    for line in reversed((stack or "").strip().splitlines()):
        head = line.split(":", 1)[0].strip()
        if head and " " not in head:
            return head.rsplit(".", 1)[-1]
        break
    return None


LOG_LEVELS = {"debug": "debug", "info": "info", "warn": "warn", "warning": "warn", "error": "error"}


def log_entry(entry: Any) -> dict:
    entry = entry if isinstance(entry, dict) else {"message": str(entry)}
    out = {
        "timestamp": entry.get("timestamp"),
        "level": LOG_LEVELS.get(str(entry.get("level", "info")).lower(), "info"),
        "message": str(entry.get("message", "")),
        "metadata": entry.get("metadata") if isinstance(entry.get("metadata"), dict) else {},
    }
    if isinstance(entry.get("action_index"), int):
        out["action_index"] = entry["action_index"]
    return out


class LogEntrySerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField(allow_null=True)
    level = serializers.ChoiceField(choices=["debug", "info", "warn", "error"])
    message = serializers.CharField()
    action_index = serializers.IntegerField(required=False)
    metadata = serializers.DictField()


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = [
            "number",
            "status",
            "error_message",
            "error_stack",
            "logs",
            "details",
            "started_at",
            "finished_at",
            "recorded_at",
        ]


# --- input: request bodies and query parameters -----------------------------------------------
#
# Inputs are DRF serializers like the outputs, validated with is_valid(); errors.py turns the first
# error into the seed's error shape, naming the field by its path (`filter.status`, `ids.job`).
# Our own messages already name the field (OWN code); DRF's ("This field is required.") get the
# path put in front there.


def invalid(message: str) -> serializers.ValidationError:
    return serializers.ValidationError(message, code=OWN)


def invalid_at(path: str | tuple, message: str) -> serializers.ValidationError:
    """An error at `path` (a name, or names and list indexes) below the field that raises it."""
    detail: Any = [ErrorDetail(message, code=OWN)]
    for name in reversed(path if isinstance(path, tuple) else (path,)):
        detail = {name: detail}
    return serializers.ValidationError(detail)


# A request body or a query string: `Input.check(data)` -> validated data, or a 400. (Comments,
# not docstrings, on these bases: drf-spectacular would show a base's docstring as the schema's.)
class Input(serializers.Serializer):
    # A POST that means nothing without a body ({} is refused too).
    body_required = False

    @classmethod
    def check(cls, data: Any, **kwargs: Any) -> dict:
        if not isinstance(data, dict):
            raise invalid_at("body", "Request body must be a JSON object")
        if cls.body_required and not data:
            raise invalid_at("body", "Request body is required")
        serializer = cls(data=data, **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


# A list's query: `lookups` says which ORM lookup each validated parameter applies.
class FilterQuery(Input):
    lookups: ClassVar[dict[str, str]] = {}

    def apply(self, qs, data: dict | None = None):
        # `data`: the validated values, when this serializer was a field of another.
        data = self.validated_data if data is None else data
        for name, lookup in self.lookups.items():
            value = data.get(name)
            if value is not None and value != "":
                qs = qs.filter(**{lookup: value})
        return qs

    @classmethod
    def parse(cls, request) -> FilterQuery:
        """The request's query string, validated (a 400 naming the parameter otherwise)."""
        query = cls(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        return query


def field_path(field: serializers.Field) -> str:
    names = []
    while field is not None:
        if field.field_name:
            names.append(field.field_name)
        field = field.parent
    return ".".join(reversed(names))


class Param(serializers.Field):
    """An input value; its messages name it by its path. Missing, null and "" are "not given"
    (its default) unless `empty_ok=False`, where null and "" reach to_internal_value."""

    def __init__(self, *, empty_ok: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        self.empty_ok = empty_ok
        super().__init__(**kwargs)

    @property
    def path(self) -> str:
        return field_path(self)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is empty:
            return super().validate_empty_values(data)
        if self.empty_ok and (data is None or data == ""):
            return True, (self.get_default() if self.default is not empty else None)
        return False, data

    def to_representation(self, value: Any) -> Any:
        return value


_INT = re.compile(r"-?[0-9]{1,12}")


@extend_schema_field(OpenApiTypes.INT)
class IntParam(Param):
    """An integer in bounds: a JSON number, or ASCII digits in a query string."""

    def __init__(self, *, minimum: int = 0, maximum: int | None = None, **kwargs: Any) -> None:
        self.minimum, self.maximum = minimum, maximum
        # Never fail (to_internal_value checks first): they put the bounds in the schema.
        bounds = [MinValueValidator(minimum)]
        if maximum is not None:
            bounds.append(MaxValueValidator(maximum))
        super().__init__(validators=bounds, **kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, int) and not isinstance(data, bool):
            value = data
        elif isinstance(data, str) and _INT.fullmatch(data):
            value = int(data)
        else:
            raise invalid(f"{self.path} must be an integer")
        if value < self.minimum or (self.maximum is not None and value > self.maximum):
            bounds = (
                f"between {self.minimum} and {self.maximum}"
                if self.maximum is not None
                else f">= {self.minimum}"
            )
            raise invalid(f"{self.path} must be {bounds}")
        return value


@extend_schema_field(OpenApiTypes.STR)
class DateTimeParam(Param):
    """ISO 8601, within the calendar Redrive can widen a window in (validation.iso_datetime)."""

    def to_internal_value(self, data: Any) -> datetime:
        try:
            return validation.iso_datetime(str(data), self.path)
        except InvalidInput as exc:
            raise invalid(exc.message) from None


@extend_schema_field(OpenApiTypes.INT)
class EpochMsParam(Param):
    def to_internal_value(self, data: Any) -> datetime:
        try:
            return validation.epoch_milliseconds(data, self.path)
        except InvalidInput as exc:
            raise invalid(exc.message) from None


@extend_schema_field(OpenApiTypes.STR)
class TextParam(Param):
    """Free text that is searched or stored: bounded, and without NUL (PostgreSQL refuses it)."""

    def __init__(self, *, maximum: int = 200, **kwargs: Any) -> None:
        self.maximum = maximum
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or len(data) > self.maximum or "\x00" in data:
            raise invalid(f"{self.path} must be at most {self.maximum} characters, without NUL")
        return data


class ChoiceParam(Param, serializers.ChoiceField):
    """A ChoiceField (the schema lists the choices) with Param's messages and empty values."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or data not in self.choice_strings_to_values:
            raise invalid(f"{self.path} must be one of {', '.join(self.choices)}")
        return data


@extend_schema_field(OpenApiTypes.STR)
class UuidParam(Param):
    def to_internal_value(self, data: Any) -> str:
        try:
            return str(uuid.UUID(data))
        except (ValueError, TypeError, AttributeError):
            raise invalid(f"{self.path} must be a valid UUID") from None


@extend_schema_field(OpenApiTypes.STR)
class CursorParam(Param):
    """An opaque cursor; selectors.cursor reads it (and refuses one it did not write)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise invalid(f"{self.path} must be a string")
        return data


# What every seed's list reads: text in the error, a page size and a cursor.
class ListQuery(FilterQuery):
    q = TextParam(help_text="text in the error message")
    limit = IntParam(minimum=1, maximum=100, default=25, help_text="1-100, default 25")
    cursor = CursorParam()

    lookups: ClassVar[dict[str, str]] = {"q": "error_message__icontains"}


# A list of definitions (rules, saved workflows): by name, a page size and a cursor.
class DefinitionListQuery(FilterQuery):
    q = TextParam(help_text="text in the name")
    limit = IntParam(minimum=1, maximum=100, default=25, help_text="1-100, default 25")
    cursor = CursorParam()

    lookups: ClassVar[dict[str, str]] = {"q": "name__icontains"}


def window_lookups(time_field: str) -> dict[str, str]:
    """since (inclusive) and until (exclusive) on a list's time field."""
    return {"since": f"{time_field}__gte", "until": f"{time_field}__lt"}
