"""Editing a definition of units of work in the admin (an automation rule's actions, a workflow's
tasks) without showing its secrets: the field is shown with each secret value masked, a secret
submitted back as its mask keeps its stored value (as kinds/functions/forms.py does for a
function's environment), the model's clean() checks it (the kind's validate_definition), and
each save is audited naming the secrets added, changed or removed, never their values."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from django import forms

from ..models import AuditEvent
from ..work import secrets

HELP = (
    'Header and env values may be {"value": "...", "secret": true}: a secret shown masked keeps '
    "its value if left as it is."
)


class DefinitionForm(forms.ModelForm):
    definition_field: ClassVar[str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = getattr(self.instance, self.definition_field) if self.instance.pk else None
        self.stored = copy.deepcopy(stored)
        field = self.fields.get(self.definition_field)
        if field is not None:
            if self.instance.pk:
                self.initial[self.definition_field] = secrets.masked_deep(self.stored)
            field.help_text = HELP

    def clean(self) -> dict:
        cleaned = super().clean()
        name = self.definition_field
        if name in cleaned:
            cleaned[name] = secrets.keep_masked(cleaned[name], self.stored)
            # A mask that matched no stored secret (moved, say) would be saved as the secret.
            lost = secrets.unmatched_masks(cleaned[name], prefix=name)
            if lost:
                self.add_error(name, f"{lost[0]}: a masked secret that moved must be entered again")
        return cleaned


def audit_definition_change(
    form: DefinitionForm, user: Any, ip: str | None, *, action: str, kind: str
) -> None:
    """An audit row for a definition saved in the admin: the fields changed and where a secret
    was added, changed or removed (`actions[0].headers.Authorization`), never a value."""
    obj = form.instance
    name = form.definition_field
    AuditEvent.objects.create(
        tenant_id=obj.tenant_id,
        user=user,
        actor=user.get_username(),
        source=AuditEvent.Source.ADMIN,
        action=action,
        kind=kind,
        target_id=str(obj.pk),
        ip=ip,
        details={
            "fields": sorted(form.changed_data),
            "secrets": secrets.changed_secret_paths(form.stored, getattr(obj, name), prefix=name),
        },
    )
