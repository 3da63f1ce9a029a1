"""RFC 3263 §4 as pure functions: transport selection, NAPTR and SRV ordering, failover."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from softphone.errors import TransportError
from softphone.sip.dialog import LocalAddress
from softphone.sip.locate import (
    Failover,
    Naptr,
    Service,
    Srv,
    Target,
    fallback_transport,
    host_targets,
    is_failure,
    literal_target,
    naptr_services,
    order_srv,
    plan_for,
    rebranched,
    services,
    srv_name,
    srv_targets,
    unique,
)
from softphone.sip.message import Headers, Request
from softphone.sip.uri import SipUri

ALL = frozenset({"udp", "tcp", "tls"})
PLAIN = frozenset({"udp", "tcp"})


def uri(text: str) -> SipUri:
    return SipUri.parse(text)


def first(_low: int, _high: int) -> int:
    return _low  # a random source that always draws the lowest number


# ---------------------------------------------------------------- §4.1 transport selection


@pytest.mark.parametrize(("text", "transport", "port", "numeric"), [
    ("sip:bob@example.test;transport=tcp", "tcp", None, False),  # the transport parameter wins
    ("sip:bob@192.0.2.1", "udp", None, True),  # numeric: UDP for sip:
    ("sips:bob@192.0.2.1", "tls", None, True),  # numeric: TLS for sips:
    ("sip:bob@example.test:5070", "udp", 5070, False),  # explicit port: UDP, no NAPTR/SRV
    ("sips:bob@example.test:5071", "tls", 5071, False),
    ("sip:bob@example.test", None, None, False),  # NAPTR decides
    ("sip:bob@[2001:db8::1]", "udp", None, True),
    ("sip:bob@example.test;maddr=192.0.2.9", "udp", None, True),
])
def test_plan(text: str, transport: str | None, port: int | None, numeric: bool) -> None:
    plan = plan_for(uri(text), ALL)
    assert (plan.transport, plan.port, plan.numeric) == (transport, port, numeric)


def test_a_required_transport_counts_as_the_parameter() -> None:
    assert plan_for(uri("sip:bob@example.test"), ALL, "tcp").transport == "tcp"


def test_sips_is_always_tls() -> None:
    assert plan_for(uri("sips:bob@example.test;transport=tcp"), ALL).transport == "tls"


@pytest.mark.parametrize("text", ["sip:bob@example.test;transport=tls", "sips:bob@example.test"])
def test_an_unsupported_transport_is_a_clear_error(text: str) -> None:
    with pytest.raises(TransportError, match="tls|TLS"):
        plan_for(uri(text), PLAIN)


def test_literal_targets_use_the_default_port_of_the_transport() -> None:
    assert literal_target(plan_for(uri("sips:bob@192.0.2.1"), ALL)) == Target("tls", "192.0.2.1", 5061, "192.0.2.1")
    assert literal_target(plan_for(uri("sip:bob@192.0.2.1:5080"), ALL)) == Target("udp", "192.0.2.1", 5080,
                                                                                  "192.0.2.1")
    assert literal_target(plan_for(uri("sip:bob@example.test"), ALL)) is None


def test_srv_names() -> None:
    assert srv_name("udp", "example.test") == "_sip._udp.example.test"
    assert srv_name("tcp", "example.test.") == "_sip._tcp.example.test"
    assert srv_name("tls", "example.test") == "_sips._tcp.example.test"
    assert srv_name("tcp", "example.test", secure=True) == "_sips._tcp.example.test"


NAPTRS = [
    Naptr(20, 10, "S", "SIP+D2U", "_sip._udp.example.test."),
    Naptr(10, 20, "S", "SIPS+D2T", "_sips._tcp.example.test."),
    Naptr(10, 10, "S", "SIP+D2T", "_sip._tcp.example.test."),
    Naptr(5, 10, "S", "SIP+D2S", "_sip._sctp.example.test."),  # SCTP: not ours
    Naptr(1, 10, "U", "E2U+sip", "", "!^.*$!sip:x@y!"),  # not a SIP service
]


def test_naptr_order_then_preference_filtered_by_what_we_support() -> None:
    plan = plan_for(uri("sip:bob@example.test"), ALL)
    assert services(plan, NAPTRS, ALL) == [
        Service("tcp", "_sip._tcp.example.test"), Service("tls", "_sips._tcp.example.test"),
        Service("udp", "_sip._udp.example.test"),
    ]
    assert services(plan, NAPTRS, PLAIN) == [Service("tcp", "_sip._tcp.example.test"),
                                            Service("udp", "_sip._udp.example.test")]


def test_a_sips_uri_keeps_only_sips_services() -> None:
    assert naptr_services(NAPTRS, ALL, secure=True) == [Service("tls", "_sips._tcp.example.test")]


def test_without_naptr_every_supported_transport_is_asked() -> None:
    plan = plan_for(uri("sip:bob@example.test"), PLAIN)
    assert [s.name for s in services(plan, [], PLAIN)] == ["_sip._udp.example.test", "_sip._tcp.example.test"]
    secure = plan_for(uri("sips:bob@example.test"), ALL)
    assert services(secure, None, ALL) == [Service("tls", "_sips._tcp.example.test")]


def test_a_decided_transport_skips_naptr() -> None:
    plan = plan_for(uri("sip:bob@example.test;transport=tcp"), ALL)
    assert services(plan, NAPTRS, ALL) == [Service("tcp", "_sip._tcp.example.test")]


def test_fallback_transport() -> None:
    assert fallback_transport(plan_for(uri("sip:bob@example.test"), ALL), []) == "udp"
    assert fallback_transport(plan_for(uri("sips:bob@example.test"), ALL), []) == "tls"
    tcp_only = [Service("tcp", "_sip._tcp.example.test")]
    assert fallback_transport(plan_for(uri("sip:bob@example.test"), ALL), tcp_only) == "tcp"


# ---------------------------------------------------------------- RFC 2782


def test_lower_priority_first() -> None:
    records = [Srv(20, 0, 5060, "b.test."), Srv(10, 0, 5060, "a.test."), Srv(30, 5, 5060, "c.test.")]
    assert [r.target for r in order_srv(records, first)] == ["a.test.", "b.test.", "c.test."]


def test_a_dot_target_means_no_service() -> None:
    assert order_srv([Srv(10, 0, 0, ".")], first) == []


def test_weight_zero_first_when_the_draw_is_zero() -> None:
    records = [Srv(10, 60, 5060, "heavy."), Srv(10, 0, 5060, "zero.")]
    assert [r.target for r in order_srv(records, first)] == ["zero.", "heavy."]


def test_weights_share_the_first_pick_in_proportion() -> None:
    draws = random.Random(7)
    records = [Srv(10, 75, 5060, "a."), Srv(10, 25, 5060, "b.")]
    picks = Counter(order_srv(records, draws.randint)[0].target for _ in range(4000))
    assert 0.70 < picks["a."] / 4000 < 0.80


srv_records = st.lists(
    st.builds(Srv, st.integers(0, 3), st.integers(0, 10), st.integers(1, 65535),
              st.sampled_from(["a.test.", "b.test.", "c.test.", "d.test."])),
    max_size=8,
)


@given(srv_records, st.randoms(use_true_random=False))
def test_order_is_a_permutation_sorted_by_priority(records: list[Srv], rng: random.Random) -> None:
    ordered = order_srv(records, rng.randint)
    assert Counter(ordered) == Counter(records)
    assert [r.priority for r in ordered] == sorted(r.priority for r in records)


@given(srv_records, st.integers(0, 2**32))
def test_order_only_depends_on_the_random_source(records: list[Srv], seed: int) -> None:
    assert order_srv(records, random.Random(seed).randint) == order_srv(records, random.Random(seed).randint)


# ---------------------------------------------------------------- targets


def test_targets_of_srv_and_host() -> None:
    service = Service("tcp", "_sip._tcp.example.test")
    assert srv_targets(service, Srv(1, 1, 5070, "host.example.test."), ["127.0.0.2", "127.0.0.3"]) == [
        Target("tcp", "127.0.0.2", 5070, "host.example.test"), Target("tcp", "127.0.0.3", 5070, "host.example.test"),
    ]
    assert host_targets("tls", "example.test", ["127.0.0.2"], None) == [Target("tls", "127.0.0.2", 5061,
                                                                               "example.test")]
    twice = [Target("udp", "127.0.0.2", 5060), Target("udp", "127.0.0.2", 5060, "x"), Target("tcp", "127.0.0.2", 5060)]
    assert unique(twice) == [twice[0], twice[2]]
    assert str(Target("udp", "::1", 5060, "h")) == "udp:[::1]:5060 (h)"


# ---------------------------------------------------------------- §4.3 failover


def request() -> Request:
    via = LocalAddress("udp", "127.0.0.1", 5060).via()
    headers = Headers.of(("Via", str(via)), ("Via", "SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKother"),
                         ("From", "<sip:a@x>;tag=1"), ("To", "<sip:b@y>"), ("Call-ID", "c1"),
                         ("CSeq", "1 OPTIONS"), ("Max-Forwards", "70"))
    return Request("OPTIONS", uri("sip:b@example.test"), headers)


@pytest.mark.parametrize(("status", "failed"), [(None, True), (503, True), (500, False), (486, False),
                                                (200, False)])
def test_what_counts_as_a_failure(status: int | None, failed: bool) -> None:
    assert is_failure(status) is failed


def test_rebranched_is_a_new_transaction_of_the_same_request() -> None:
    original = request()
    retry = rebranched(original, "tcp")
    assert retry.top_via.branch != original.top_via.branch and retry.top_via.branch.startswith("z9hG4bK")
    assert retry.top_via.transport == "TCP" and retry.top_via.sent_by == original.top_via.sent_by
    assert retry.vias[1:] == original.vias[1:]
    assert (retry.cseq, retry.call_id, retry.uri) == (original.cseq, original.call_id, original.uri)


def test_failover_walks_the_targets_then_stops() -> None:
    table = Failover()
    original = request()
    second, third = Target("udp", "127.0.0.2", 5060), Target("tcp", "127.0.0.3", 5070)
    table.remember(original, "c1", [second, third])
    retry, target = table.next(original) or (None, None)
    assert target == second and retry is not None
    assert table.next(original) is None  # the old transaction is forgotten
    again, target = table.next(retry) or (None, None)
    assert target == third and again is not None and again.top_via.transport == "TCP"
    assert table.next(again) is None and len(table) == 0


def test_forgetting() -> None:
    table = Failover()
    table.remember(request(), "c1", [Target("udp", "127.0.0.2", 5060)])
    table.remember(request(), "c2", [Target("udp", "127.0.0.2", 5060)])
    table.remember(request(), "c3", [])  # nothing to fail over to: nothing kept
    assert len(table) == 2
    table.forget_call("c1")
    assert len(table) == 1
