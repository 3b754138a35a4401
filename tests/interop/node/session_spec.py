"""The Python side of the session JSON that cli.mjs and bench.mjs take: one place for the
tests and the benchmarks."""

from __future__ import annotations

from typing import Any

from shopify_sessions import Session
from shopify_sessions._time import to_epoch_ms


def to_spec(session: Session) -> dict[str, Any]:
    """The session as the Node scripts take it: JS keys in propertiesToSave order, dates in ms."""
    spec: dict[str, Any] = {
        "id": session.id,
        "shop": session.shop,
        "state": session.state,
        "isOnline": session.is_online,
    }
    optional = {
        "scope": session.scope,
        "accessToken": session.access_token,
        "expires": session.expires and to_epoch_ms(session.expires),
        "refreshToken": session.refresh_token,
        "refreshTokenExpires": session.refresh_token_expires
        and to_epoch_ms(session.refresh_token_expires),
    }
    spec.update((k, v) for k, v in optional.items() if v is not None)
    if session.online_access_info is not None:
        user = session.online_access_info.associated_user
        fields = {
            "id": user.id,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": user.email,
            "email_verified": user.email_verified,
            "account_owner": user.account_owner,
            "locale": user.locale,
            "collaborator": user.collaborator,
        }
        info = session.online_access_info
        access: dict[str, Any] = {}
        if info.expires_in is not None:
            access["expires_in"] = info.expires_in
        if info.associated_user_scope is not None:
            access["associated_user_scope"] = info.associated_user_scope
        access["associated_user"] = {k: v for k, v in fields.items() if v is not None}
        spec["onlineAccessInfo"] = access
    if session.extra:
        spec["extra"] = dict(session.extra)
    return spec
