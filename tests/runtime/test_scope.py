"""Addresses: unique, deterministic, and a scope that does not grow with every name."""

from __future__ import annotations

from rh_parallel.runtime.scope import KEPT_NAMES, Scope


def test_addresses_count_per_name() -> None:
    scope = Scope("root")
    assert [scope.child_address(n) for n in ("a", "b", "a", "a")] == [
        "root/a",
        "root/b",
        "root/a#1",
        "root/a#2",
    ]


def test_a_group_and_an_event_of_one_name_get_distinct_addresses() -> None:
    scope = Scope("")
    assert scope.child_address("x") != scope.child_address("x")


def test_many_distinct_names_keep_the_scope_bounded_and_addresses_unique() -> None:
    def program() -> list[str]:
        scope = Scope("")
        names = [f"n{i}" for i in range(3 * KEPT_NAMES)] + ["n0", "n1", "n0"]
        addresses = [scope.child_address(n) for n in names]
        assert scope._ordinals is not None and len(scope._ordinals) <= KEPT_NAMES
        return addresses

    first = program()
    assert len(set(first)) == len(first)  # unique, although early names were forgotten
    assert program() == first  # and deterministic
