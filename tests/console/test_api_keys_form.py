"""The API keys page's form (issue 20 §3): a role's preset gives that role's permissions, as
`manage.py create_api_key --role` does, never more than the signed-in user holds; an expiry day
after today; every bad field a 400 naming it, and no key made."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from executions import permissions
from executions.models import ApiKey

pytestmark = pytest.mark.django_db


def test_a_preset_gives_the_roles_permissions_and_an_expiry_day_is_kept(login, cast) -> None:
    day = (timezone.now() + timedelta(days=7)).date()
    client = login("alice")
    answer = client.post(
        reverse("api_keys"),
        {"name": "viewer script", "role": "viewer", "permissions": [], "expires": day.isoformat()},
    )
    assert answer.status_code == 302
    key = ApiKey.objects.get(tenant=cast.acme, name="viewer script")
    assert key.permissions == sorted(permissions.of_role("viewer"))
    assert key.expiry_date.isoformat() == f"{day.isoformat()}T00:00:00+00:00"
    page = client.get(reverse("api_keys")).content.decode()
    assert f"{day.isoformat()} 00:00 UTC" in page
    # expired keys say so
    ApiKey.objects.filter(pk=key.pk).update(expiry_date=timezone.now() - timedelta(days=1))
    assert (
        '<span class="badge warn">expired</span>'
        in client.get(reverse("api_keys")).content.decode()
    )


@pytest.mark.parametrize(
    ("form", "field", "says"),
    [
        ({"role": "root"}, "role", "Select a valid choice"),
        ({"role": "", "permissions": []}, "permissions", "Tick at least one permission"),
        ({"role": "viewer", "expires": "2001-01-01"}, "expires", "Pick a day after today"),
        ({"role": "viewer", "expires": "2999-01-01"}, "expires", "within 5 years"),
        ({"role": "viewer", "expires": "tomorrow"}, "expires", "Enter a valid date"),
    ],
)
def test_a_bad_field_is_a_400_naming_it_and_makes_no_key(login, cast, form, field, says) -> None:
    answer = login("alice").post(reverse("api_keys"), {"name": "x", **form})
    assert answer.status_code == 400
    assert says in answer.context["form"].errors[field][0]
    assert not ApiKey.objects.filter(tenant=cast.acme).exists()
