"""Forms of the console (the filters are parsed by executions.filters, not a form)."""

from __future__ import annotations

from django import forms

from executions import permissions


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=50, help_text="Say what uses it, e.g. “nightly retry script”."
    )
    permissions = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, allowed: frozenset[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Nobody hands out a permission they do not hold themselves.
        self.fields["permissions"].choices = [(p, p) for p in permissions.every() if p in allowed]
        self.fields["permissions"].initial = list(permissions.read())
