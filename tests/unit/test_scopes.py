from __future__ import annotations

import pytest

from shopify_sessions._scopes import AuthScopes


def test_string_is_split_on_comma_and_whitespace() -> None:
    scopes = AuthScopes("read_orders, write_products,,  read_themes ,")
    assert scopes.to_array(original=True) == ["read_orders", "write_products", "read_themes"]


def test_iterable_items_are_trimmed_and_blanks_dropped() -> None:
    scopes = AuthScopes([" read_orders ", "", "  ", "read_orders", "write_products"])
    assert scopes.to_array(original=True) == ["read_orders", "write_products"]


@pytest.mark.parametrize("empty", [None, "", [], ()])
def test_empty_input_gives_no_scopes(empty: str | list[str] | None) -> None:
    scopes = AuthScopes(empty)
    assert scopes.to_array() == []
    assert str(scopes) == ""


def test_write_implies_read() -> None:
    scopes = AuthScopes("write_products,read_products,read_orders")
    assert scopes.compressed == {"write_products", "read_orders"}
    assert scopes.expanded == {"write_products", "read_products", "read_orders"}
    assert scopes.original == {"write_products", "read_products", "read_orders"}


def test_unauthenticated_write_implies_unauthenticated_read() -> None:
    scopes = AuthScopes("unauthenticated_write_checkouts")
    assert scopes.expanded == {"unauthenticated_write_checkouts", "unauthenticated_read_checkouts"}
    assert not scopes.has("read_checkouts")


def test_order_follows_input() -> None:
    scopes = AuthScopes("write_b,read_a,read_b,write_c")
    assert scopes.to_array() == ["write_b", "read_a", "write_c"]
    assert str(scopes) == "write_b,read_a,write_c"
    assert scopes.to_array(original=True) == ["write_b", "read_a", "read_b", "write_c"]


def test_auth_scopes_argument_contributes_its_expanded_scopes() -> None:
    copied = AuthScopes(AuthScopes("write_products"))
    assert copied.to_array(original=True) == ["write_products", "read_products"]
    assert copied.to_array() == ["write_products"]


def test_has() -> None:
    scopes = AuthScopes("write_products,read_orders")
    assert scopes.has("read_products")
    assert scopes.has(["write_products", "read_orders"])
    assert scopes.has(AuthScopes("read_products, read_orders"))
    assert scopes.has(None)
    assert scopes.has("")
    assert not scopes.has("write_orders")
    assert not scopes.has("read_products,read_themes")


def test_equals_follows_javascript() -> None:
    assert AuthScopes("write_a,read_a").equals("write_a")
    assert AuthScopes("read_b, write_a").equals(["write_a", "read_b"])
    assert not AuthScopes("write_a").equals("read_a")
    assert not AuthScopes("write_a").equals("write_a,read_b")
    # JavaScript's equals() is not symmetric here; kept as is.
    assert AuthScopes("read_a,write_b").equals("write_a,write_b")
    assert not AuthScopes("write_a,write_b").equals("read_a,write_b")


def test_dunder_eq_is_symmetric_and_hash_consistent() -> None:
    a = AuthScopes("write_a,read_a,read_b")
    b = AuthScopes(["read_b", "write_a"])
    assert a == b
    assert hash(a) == hash(b)
    assert AuthScopes("read_a,write_b") != AuthScopes("write_a,write_b")
    assert AuthScopes("read_a") != "read_a"
    assert len({a, b}) == 1


def test_repr() -> None:
    assert repr(AuthScopes("write_a, read_a, read_b")) == "AuthScopes('write_a,read_b')"


def test_slots() -> None:
    with pytest.raises(AttributeError):
        AuthScopes("read_a").other = 1  # type: ignore[attr-defined]


def test_non_str_item_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        AuthScopes(["read_a", 1])  # type: ignore[list-item]
