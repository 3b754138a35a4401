"""Access scopes, as ``AuthScopes`` in ``@shopify/shopify-api``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeAlias

__all__ = ["AuthScopes", "ScopesLike"]

SCOPE_DELIMITER = ","
_SPLIT = re.compile(rf"{SCOPE_DELIMITER}\s*")
_WRITE_SCOPE = re.compile(r"(unauthenticated_)?write_(.*)")


class AuthScopes:
    """A set of access scopes where ``write_X`` implies ``read_X``.

    Three views are kept, all in first-seen order: the scopes as given
    (``original``), without the implied ones (``compressed``) and with them
    (``expanded``). ``unauthenticated_write_X`` implies ``unauthenticated_read_X``.

    Args:
        scopes: A comma-separated string, an iterable of scopes, another
            ``AuthScopes`` (its expanded scopes are taken) or ``None``.
    """

    __slots__ = ("_compressed", "_expanded", "_original")

    _original: tuple[str, ...]
    _compressed: tuple[str, ...]
    _expanded: tuple[str, ...]

    def __init__(self, scopes: ScopesLike = None) -> None:
        given = [scope.strip() for scope in _as_list(scopes)]
        original = tuple(dict.fromkeys(scope for scope in given if scope))
        implied = tuple(dict.fromkeys(_implied_scopes(original)))
        self._original = original
        self._compressed = tuple(scope for scope in original if scope not in implied)
        self._expanded = tuple(dict.fromkeys(original + implied))

    @property
    def original(self) -> frozenset[str]:
        """The scopes as given, duplicates and blanks removed."""
        return frozenset(self._original)

    @property
    def compressed(self) -> frozenset[str]:
        """The given scopes minus those implied by another given scope."""
        return frozenset(self._compressed)

    @property
    def expanded(self) -> frozenset[str]:
        """The given scopes plus every scope they imply."""
        return frozenset(self._expanded)

    def has(self, scopes: ScopesLike) -> bool:
        """Whether these scopes grant every scope in ``scopes``.

        Args:
            scopes: The required scopes, in any form the constructor accepts.
        """
        required = scopes if isinstance(scopes, AuthScopes) else AuthScopes(scopes)
        return set(required._compressed) <= set(self._expanded)

    def equals(self, other: ScopesLike) -> bool:
        """Compare as JavaScript's ``AuthScopes.equals`` does.

        True when both compressed sets have the same size and ``other`` has every
        compressed scope of ``self``. Like the JavaScript original this is not
        symmetric in odd cases (``"read_a,write_b"`` equals ``"write_a,write_b"``
        but not the reverse); ``==`` is the symmetric comparison.
        """
        other_scopes = other if isinstance(other, AuthScopes) else AuthScopes(other)
        return len(self._compressed) == len(other_scopes._compressed) and all(
            other_scopes.has(scope) for scope in self._compressed
        )

    def to_array(self, original: bool = False) -> list[str]:
        """The compressed scopes, or the original ones when ``original`` is true."""
        return list(self._original if original else self._compressed)

    def __eq__(self, other: object) -> bool:
        # Same compressed set means same expanded set: symmetric and hash-consistent.
        if not isinstance(other, AuthScopes):
            return NotImplemented
        return set(self._compressed) == set(other._compressed)

    def __hash__(self) -> int:
        return hash(frozenset(self._compressed))

    def __str__(self) -> str:
        return SCOPE_DELIMITER.join(self._compressed)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


ScopesLike: TypeAlias = str | Iterable[str] | AuthScopes | None
"""Anything :class:`AuthScopes` accepts."""


def _as_list(scopes: ScopesLike) -> list[str]:
    if scopes is None:
        return []
    if isinstance(scopes, str):
        return _SPLIT.split(scopes)
    if isinstance(scopes, AuthScopes):
        return list(scopes._expanded)
    items = list(scopes)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"a scope must be a str, got {type(item).__name__}")
    return items


def _implied_scopes(scopes: Iterable[str]) -> list[str]:
    implied = []
    for scope in scopes:
        match = _WRITE_SCOPE.fullmatch(scope)
        if match:
            prefix, name = match.groups()
            implied.append(f"{prefix or ''}read_{name}")
    return implied
