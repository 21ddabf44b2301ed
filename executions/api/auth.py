"""Placeholder until the REST API issue: authenticators are named in settings."""

from rest_framework.authentication import BaseAuthentication


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        return None


class JWTAuthentication(BaseAuthentication):
    def authenticate(self, request):
        return None
