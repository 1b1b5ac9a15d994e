from __future__ import annotations

import datetime
import math
import threading
from dataclasses import dataclass
from enum import Enum
from typing import Any

import pytest
from pydantic import BaseModel

from rh_parallel.store.serialization import check_serializer, decode, encode


class Doc(BaseModel):
    title: str
    tags: tuple[str, ...]
    score: float | None = None


@dataclass
class Point:
    x: int
    y: list[int]


class Color(Enum):
    RED = "red"


class Opaque:
    """A class pydantic_core does not know how to write as JSON (and that pickles)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.n == self.n

    __hash__ = None  # type: ignore[assignment]


def json_round_trip(value: Any) -> Any:
    data = encode(value, "json")
    assert isinstance(data, bytes)
    return decode(data, "json")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, True),
        (3, 3),
        (10**30, 10**30),
        (1.5, 1.5),
        ("naïve ☃ 文字", "naïve ☃ 文字"),
        ([1, "a", None], [1, "a", None]),
        ((1, 2), [1, 2]),
        ({"a": {"b": [1, {"c": (2, 3)}]}}, {"a": {"b": [1, {"c": [2, 3]}]}}),
        (Doc(title="t", tags=("x", "y")), {"title": "t", "tags": ["x", "y"], "score": None}),
        (Point(1, [2, 3]), {"x": 1, "y": [2, 3]}),
        (
            {"docs": [Doc(title="a", tags=())]},
            {"docs": [{"title": "a", "tags": [], "score": None}]},
        ),
        (Color.RED, "red"),
        (datetime.date(2026, 11, 28), "2026-11-28"),
    ],
)
def test_json_round_trips_plain_data(value: Any, expected: Any) -> None:
    assert json_round_trip(value) == expected


def test_json_keeps_nan_and_infinities() -> None:
    back = json_round_trip({"nan": math.nan, "inf": math.inf, "neg": [-math.inf]})
    assert math.isnan(back["nan"])
    assert back["inf"] == math.inf
    assert back["neg"] == [-math.inf]


def test_json_keeps_nan_inside_a_model() -> None:
    back = json_round_trip(Doc(title="t", tags=(), score=math.nan))
    assert math.isnan(back["score"])


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (Opaque(1), "Opaque"),
        ({"nested": [Opaque(2)]}, "Opaque"),  # the pydantic error inside names it
        (threading.Lock(), "lock"),
        (lambda: 1, "function"),
    ],
)
def test_json_refuses_unknown_types_with_a_type_error_naming_the_type(
    value: Any, type_name: str
) -> None:
    with pytest.raises(TypeError) as info:
        encode(value, "json")
    message = str(info.value)
    assert type_name in message
    assert "serializer='pickle'" in message
    assert "pydantic model" in message


def test_pickle_keeps_python_types() -> None:
    value = {"t": (1, 2), "s": {3, 4}, "o": Opaque(5), "nan": math.nan}
    back = decode(encode(value, "pickle"), "pickle")
    assert back["t"] == (1, 2)
    assert back["s"] == {3, 4}
    assert back["o"] == Opaque(5)
    assert math.isnan(back["nan"])


def test_pickle_refuses_what_cannot_be_pickled_with_a_type_error_naming_the_type() -> None:
    with pytest.raises(TypeError, match="lock"):
        encode(threading.Lock(), "pickle")
    with pytest.raises(TypeError, match="function"):
        encode(lambda: 1, "pickle")


def test_json_decode_does_not_unpickle() -> None:
    with pytest.raises(ValueError):
        decode(encode({"a": 1}, "pickle"), "json")


@pytest.mark.parametrize("bad", ["yaml", "JSON", None, 1])
def test_unknown_serializers_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"serializer must be 'json' or 'pickle'"):
        check_serializer(bad)
    with pytest.raises(ValueError, match="serializer"):
        encode(1, bad)
    with pytest.raises(ValueError, match="serializer"):
        decode(b"1", bad)


def test_known_serializers_pass() -> None:
    assert check_serializer("json") == "json"
    assert check_serializer("pickle") == "pickle"


@dataclass
class Holder:
    ratio: float
    doc: Doc


def test_json_keeps_nan_in_models_nested_anywhere() -> None:
    value = {
        "docs": [Doc(title="a", tags=(), score=math.inf)],
        "holder": Holder(math.nan, Doc(title="b", tags=(), score=-math.inf)),
        "none": None,
    }
    back = json_round_trip(value)
    assert back["docs"][0]["score"] == math.inf
    assert math.isnan(back["holder"]["ratio"])
    assert back["holder"]["doc"]["score"] == -math.inf
    assert back["none"] is None
