"""API tokens with a lifetime: DRF's Token model, refused after TOKEN_TTL, deleted when the
user's password changes or the user is deactivated. Kept apart from the views in
aktina.core.auth because DRF imports the authentication class while it loads its own views."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token


def token_expires_at(token: Token) -> dt.datetime:
    return token.created + settings.TOKEN_TTL


def token_is_expired(token: Token) -> bool:
    return token_expires_at(token) <= timezone.now()


def token_user(key: str):
    """The active user a token key authenticates, or None (unknown, expired, inactive)."""
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or token_is_expired(token) or not token.user.is_active:
        return None
    return token.user


@transaction.atomic
def token_issue(*, user, replace: bool = False) -> Token:
    """The user's live token, or a new one if it has expired (or `replace`)."""
    token = Token.objects.select_for_update().filter(user=user).first()
    if token is not None and (replace or token_is_expired(token)):
        token.delete()
        token = None
    return token or Token.objects.create(user=user)


def tokens_revoke(*, user) -> int:
    return Token.objects.filter(user=user).delete()[0]


def tokens_revoke_on_credentials_change(sender, instance, **kwargs) -> None:
    """pre_save of the user model: a new password (set_password, not a hash upgrade on login,
    which clears `_password` before saving) or a deactivation deletes the user's tokens."""
    if instance.pk is None:
        return
    if getattr(instance, "_password", None) is not None or not instance.is_active:
        tokens_revoke(user=instance)


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing a token older than TOKEN_TTL."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_is_expired(token):
            raise exceptions.AuthenticationFailed(
                "Token expired: obtain a new one at /api/auth/token/."
            )
        return user, token
