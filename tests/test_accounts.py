"""The registrar loop over a stand-in network: unregistering on stop waits for the answers, not for a clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from softphone.accounts import Account, Registrar
from softphone.errors import TransportError
from softphone.sip.auth import Credentials
from softphone.sip.dialog import LocalAddress
from softphone.sip.endpoint import Peer, build_response
from softphone.sip.headers import NameAddress
from softphone.sip.message import Request
from softphone.sip.uri import SipUri

REGISTRAR = SipUri("sip", None, None, "192.0.2.1", 5060)


def account(index: int) -> Account:
    aor = NameAddress(SipUri("sip", f"user{index}", None, "example.com"))
    return Account(index, aor, REGISTRAR, (NameAddress(REGISTRAR.with_params(lr=None)),), 600, True,
                   (Credentials(f"user{index}", "secret"),))


class FakeNetwork:
    """What the registrar uses of SipNetwork: a clock, addresses and name resolution."""

    def __init__(self, fail_resolution: bool = False) -> None:
        self.fail_resolution = fail_resolution

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def local_address(self, transport: str, toward: str | None = None) -> LocalAddress:
        return LocalAddress(transport, "192.0.2.10", 5070)

    async def resolve(self, uri: SipUri, transport: str | None = None) -> Peer:
        if self.fail_resolution:
            raise TransportError(f"cannot resolve {uri.host}")
        return Peer("udp", uri.host, uri.port or 5060)

    def kick(self) -> None:
        pass

    def send_raw(self, data: bytes, peer: Peer) -> None:
        pass


class FakeEndpoint:
    """Records REGISTERs; ``answer`` decides what the registrar does with each."""

    def __init__(self) -> None:
        self.sent: list[Request] = []
        self.answer: Callable[[Request], None] = lambda request: None

    def send_request(self, request: Request, peer: Peer, now: float) -> None:
        self.sent.append(request)
        self.answer(request)


def make_registrar(network: FakeNetwork | None = None) -> tuple[Registrar, FakeEndpoint]:
    endpoint = FakeEndpoint()
    registrar = Registrar(endpoint, network or FakeNetwork(), "test", lambda event: None,  # type: ignore[arg-type]
                          keepalive_period=0)
    return registrar, endpoint


def answer_later(registrar: Registrar, delay: float) -> Callable[[Request], None]:
    """A registrar that says 200 OK after ``delay`` seconds."""

    def answer(request: Request) -> None:
        response = build_response(request, 200, to_tag="reg")
        asyncio.get_running_loop().call_later(delay, registrar.on_response, response)

    return answer


async def _registered(registrar: Registrar, endpoint: FakeEndpoint, count: int) -> None:
    endpoint.answer = answer_later(registrar, 0.0)
    registrar.start([account(i) for i in range(1, count + 1)])
    for _ in range(100):
        if all(r.state == "registered" for _, r in registrar.registrations):
            return
        await asyncio.sleep(0.01)
    raise AssertionError([r.state for _, r in registrar.registrations])


def test_stop_returns_as_soon_as_every_unregistration_is_answered() -> None:
    async def main() -> float:
        registrar, endpoint = make_registrar()
        await _registered(registrar, endpoint, 2)
        endpoint.answer = answer_later(registrar, 0.05)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await registrar.stop(timeout=5.0)
        assert [r.state for _, r in registrar.registrations] == ["unregistered", "unregistered"]
        assert [r.headers.get("Expires") for r in endpoint.sent[-2:]] == ["0", "0"]
        return loop.time() - started

    assert asyncio.run(main()) < 1.0


def test_stop_gives_up_after_the_timeout_without_an_answer() -> None:
    async def main() -> float:
        registrar, endpoint = make_registrar()
        await _registered(registrar, endpoint, 1)
        endpoint.answer = lambda request: None
        loop = asyncio.get_running_loop()
        started = loop.time()
        await registrar.stop(timeout=0.2)
        assert registrar.registrations[0][1].state == "unregistering"
        return loop.time() - started

    assert 0.15 <= asyncio.run(main()) < 1.0


def test_a_failed_unregistration_ends_the_wait() -> None:
    async def main() -> float:
        network = FakeNetwork()
        registrar, endpoint = make_registrar(network)
        await _registered(registrar, endpoint, 1)
        network.fail_resolution = True
        loop = asyncio.get_running_loop()
        started = loop.time()
        await registrar.stop(timeout=5.0)
        assert registrar.registrations[0][1].state == "unregistered"
        return loop.time() - started

    assert asyncio.run(main()) < 1.0


def test_stop_with_nothing_registered_does_not_wait() -> None:
    async def main() -> float:
        registrar, _endpoint = make_registrar()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await registrar.stop(timeout=5.0)
        return loop.time() - started

    assert asyncio.run(main()) < 0.5
