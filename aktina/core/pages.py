"""Who may open a server-rendered page: one decorator for every app's pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required


def page_needs(perm: str):
    """Anonymous: to the login page; signed in without `perm`: 403 (is_staff is not enough)."""

    def decorate(view):
        return login_required(
            permission_required(perm, raise_exception=True)(view), login_url="admin:login"
        )

    return decorate
