"""Whether a copied session reads back as the source session, up to the target's layout."""

from __future__ import annotations

from .._session import Session


def same_up_to_layout(source: Session, target: Session) -> bool:
    """``source == target`` once both are put in the form every layout can hold.

    Layouts differ in what they keep: whole seconds in epoch-second and MySQL
    ``timestamp`` columns, NULL for an empty string (Drizzle, Prisma), false for an
    absent user boolean (Prisma). A copy that differs only there is faithful.
    """
    return _comparable(source) == _comparable(target)


def _comparable(session: Session) -> Session:
    copy = session.copy()
    copy.scope = copy.scope or None
    copy.access_token = copy.access_token or None
    copy.refresh_token = copy.refresh_token or None
    if copy.expires is not None:
        copy.expires = copy.expires.replace(microsecond=0)
    if copy.refresh_token_expires is not None:
        copy.refresh_token_expires = copy.refresh_token_expires.replace(microsecond=0)
    if copy.online_access_info is not None:
        user = copy.online_access_info.associated_user
        for name in ("id", "first_name", "last_name", "email", "locale"):
            setattr(user, name, getattr(user, name) or None)
        for name in ("account_owner", "collaborator", "email_verified"):
            setattr(user, name, bool(getattr(user, name)))
    return copy
