"""griffe extensions: the API reference shows what a reader can use.

- ``SphinxRoles``: the package's docstrings use Sphinx roles (:class:`Session`,
  :meth:`~OfflineTokens.get`); mkdocstrings reads Markdown. Each role becomes a
  cross-reference to the object's public path (``shopify_sessions.Session``, as the API
  reference shows it) when the object is public, and plain code otherwise.
- ``PublicSignatures``: a method written as a generator under ``@contextmanager``
  (``-> Iterator[None]``) is shown returning what the decorator makes of it
  (``AbstractContextManager[None]``; ``AbstractAsyncContextManager`` for
  ``@asynccontextmanager``); a base class the reference does not document (a private
  one, such as ``StorageBase``) is not listed among the bases.

The public paths come from the ``__all__`` of the documented modules, so a reference to an
exported name always points at the page that documents it.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

PUBLIC_MODULES = (
    "shopify_sessions",
    "shopify_sessions.sqlalchemy",
    "shopify_sessions.tokens",
    "shopify_sessions.testing",
)
ROLE = re.compile(r":(?:class|meth|func|attr|data|exc|obj|mod):`(?P<tilde>~?)(?P<target>[^`]+)`")


class SphinxRoles(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != "shopify_sessions":
            return
        public = self._public_paths(pkg)
        for obj in self._walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = ROLE.sub(
                    lambda match, obj=obj: self._replace(match, obj, pkg, public),
                    obj.docstring.value,
                )

    @staticmethod
    def _public_paths(pkg: griffe.Module) -> dict[str, str]:
        """Canonical path (``shopify_sessions._session.Session``) -> public path."""
        public: dict[str, str] = {}
        for module_path in PUBLIC_MODULES:
            module = pkg if module_path == pkg.path else pkg[module_path.split(".", 1)[1]]
            for name in module.exports or ():
                try:  # a name that doesn't resolve fails the build in hooks.py, by name
                    member = module[name]
                    canonical = member.final_target.path if member.is_alias else member.path
                except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                    continue
                public[canonical] = f"{module_path}.{name}"
        return public

    def _walk(self, obj: Any) -> Any:
        yield obj
        for member in obj.members.values():
            if not member.is_alias:
                yield from self._walk(member)

    def _replace(
        self, match: re.Match[str], obj: Any, pkg: griffe.Module, public: dict[str, str]
    ) -> str:
        target = match["target"].lstrip(".")
        text = target.rsplit(".", 1)[-1] if match["tilde"] else target
        found = self._resolve(target, obj, pkg)
        # Only what the reference renders can be linked: a public object with a docstring
        # (mkdocstrings leaves out members without one). Anything else stays plain code.
        if found is not None and found.docstring is not None:
            path = found.path
            for canonical, public_path in public.items():
                if path == canonical or path.startswith(canonical + "."):
                    return f"[`{text}`][{public_path}{path[len(canonical) :]}]"
        return f"`{text}`"

    @staticmethod
    def _resolve(target: str, obj: Any, pkg: griffe.Module) -> Any:
        """The object ``target`` names as seen from ``obj``'s scope (aliases followed)."""
        first, *names = target.split(".")
        found = None
        if first == pkg.name:
            found = pkg
        else:
            scope = obj
            while scope is not None and found is None:
                found = scope.members.get(first)
                scope = scope.parent
        try:
            for name in names:
                if found is None:
                    return None
                found = (found.final_target if found.is_alias else found).members.get(name)
            return found.final_target if found is not None and found.is_alias else found
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None


#: Decorators that turn a generator into a context manager, and what they make of it.
CONTEXT_MANAGERS = {
    "contextmanager": "AbstractContextManager",
    "contextlib.contextmanager": "AbstractContextManager",
    "asynccontextmanager": "AbstractAsyncContextManager",
    "contextlib.asynccontextmanager": "AbstractAsyncContextManager",
}


class PublicSignatures(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != "shopify_sessions":
            return
        public = SphinxRoles._public_paths(pkg)
        for obj in SphinxRoles()._walk(pkg):
            if obj.is_function:
                self._context_manager(obj)
            elif obj.is_class:
                obj.bases = [base for base in obj.bases if self._documented(base, public)]

    @staticmethod
    def _context_manager(function: Any) -> None:
        made = {CONTEXT_MANAGERS.get(str(d.value)) for d in function.decorators} - {None}
        if not made:
            return
        returns = function.returns
        manager = griffe.ExprName(made.pop(), parent="contextlib")
        if isinstance(returns, griffe.ExprSubscript):  # Iterator[X], Generator[X, ...]
            inner = returns.slice
            if isinstance(inner, griffe.ExprTuple):
                inner = inner.elements[0]
            function.returns = griffe.ExprSubscript(manager, inner)
        else:
            function.returns = manager

    @staticmethod
    def _documented(base: Any, public: dict[str, str]) -> bool:
        """Whether the reader can look ``base`` up: another package's, or one we export."""
        path = base.canonical_path if isinstance(base, griffe.ExprName) else str(base)
        if path.split(".")[0] != "shopify_sessions":
            return True
        return path in public
