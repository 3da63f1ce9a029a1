"""softphone.values.fast_init: a frozen dataclass built through ``__dict__`` behaves as the
dataclass it was: frozen, equal and hashed by its fields, defaults, factories, keyword-only
fields and ``__post_init__`` as declared; the classes it cannot speed up are left alone."""

from __future__ import annotations

import dataclasses
from dataclasses import InitVar, dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from softphone.values import fast_init


def make_value(fast: bool) -> type:
    @dataclass(frozen=True)
    class Value:
        name: str
        count: int = 1
        tags: tuple[str, ...] = field(default_factory=tuple)
        extra: dict[str, int] = field(default_factory=dict, compare=False, hash=False)
        flag: bool = field(default=False, kw_only=True)

        def __post_init__(self) -> None:
            if self.count < 0:
                raise ValueError("count must not be negative")

    return fast_init(Value) if fast else Value


Plain, Fast = make_value(False), make_value(True)


def fields_of(value: object) -> dict[str, object]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}  # type: ignore[arg-type]


def test_the_init_is_replaced_and_named_like_the_dataclass_one() -> None:
    assert getattr(Fast.__init__, "__fast_init__", False)
    assert not getattr(Plain.__init__, "__fast_init__", False)
    assert Fast.__init__.__qualname__ == Plain.__init__.__qualname__


@given(st.text(), st.integers(min_value=0), st.lists(st.text(), max_size=3).map(tuple), st.booleans())
def test_a_fast_value_has_the_fields_equality_and_hash_of_the_dataclass(
    name: str, count: int, tags: tuple[str, ...], flag: bool
) -> None:
    slow, fast = Plain(name, count, tags, flag=flag), Fast(name, count, tags, flag=flag)
    assert fields_of(fast) == fields_of(slow)
    assert fast == Fast(name, count, tags, flag=flag) and hash(fast) == hash(Fast(name, count, tags, flag=flag))
    assert repr(fast) == repr(slow)


def test_defaults_factories_keywords_and_post_init() -> None:
    value = Fast("a")
    assert (value.count, value.tags, value.extra, value.flag) == (1, (), {}, False)
    assert Fast("a").extra is not value.extra  # each gets its own from the factory
    assert Fast("a", 2, ("x",), {"k": 1}, flag=True).extra == {"k": 1}
    with pytest.raises(TypeError):
        Fast("a", 1, (), {}, True)  # flag is keyword-only
    with pytest.raises(TypeError):
        Fast()  # name is required
    with pytest.raises(ValueError, match="negative"):
        Fast("a", -1)


def test_it_stays_frozen_and_replace_still_works() -> None:
    value = Fast("a", 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.count = 3  # type: ignore[misc]
    assert dataclasses.replace(value, count=5) == Fast("a", 5)
    with pytest.raises(ValueError):
        dataclasses.replace(value, count=-5)


def test_classes_it_cannot_speed_up_keep_their_init() -> None:
    @dataclass(frozen=True)
    class OwnInit:
        a: int

        def __init__(self, a: int) -> None:
            object.__setattr__(self, "a", a * 2)

    @dataclass(frozen=True, slots=True)
    class Slotted:
        a: int

    @dataclass(frozen=True)
    class WithInitVar:
        a: int
        scale: InitVar[int] = 1

    @dataclass(frozen=True)
    class NotInInit:
        a: int
        b: int = field(default=0, init=False)

    for cls in (OwnInit, Slotted, WithInitVar, NotInInit):
        before = cls.__init__
        assert fast_init(cls) is cls and cls.__init__ is before
    assert OwnInit(2).a == 4


def test_only_frozen_dataclasses() -> None:
    @dataclass
    class Mutable:
        a: int

    with pytest.raises(TypeError, match="frozen dataclass"):
        fast_init(Mutable)
    with pytest.raises(TypeError, match="frozen dataclass"):
        fast_init(int)


def test_the_values_an_invite_is_parsed_into_are_built_fast() -> None:
    from softphone.call.commands import CallSetup, MediaUpdate, SendResponse, StateChanged
    from softphone.callers import Admission
    from softphone.sdp.model import Attribute, Connection, MediaDescription, Origin, SessionDescription
    from softphone.sdp.negotiate import NegotiatedStream, SessionConfig, StreamConfig
    from softphone.sip.dialog import LocalAddress
    from softphone.sip.endpoint import Outgoing, Peer, RequestReceived
    from softphone.sip.headers import CSeq, NameAddress, Via
    from softphone.sip.message import Headers, Request, Response
    from softphone.sip.timers import Deliver, Send
    from softphone.sip.uri import SipUri

    built = (CallSetup, MediaUpdate, SendResponse, StateChanged, Admission, Attribute, Connection,
             MediaDescription, Origin, SessionDescription, NegotiatedStream, SessionConfig, StreamConfig,
             LocalAddress, Outgoing, Peer, RequestReceived, CSeq, NameAddress, Via, Headers, Request,
             Response, Deliver, Send, SipUri)
    assert [c.__name__ for c in built if not getattr(c.__init__, "__fast_init__", False)] == []
