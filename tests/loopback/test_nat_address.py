"""[net] nat_address with firewall_policy=nat_address (1, or by name): the configured public
address goes in the Contact and the SDP c= of a call while the sockets stay bound to the local
address; with firewall_policy=none (0) the local address is advertised.

The public address here is a documentation address nobody is sent to: the test plays a NAT
that forwards it to the phone, sending the ACK and BYE to the phone's local address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from softphone.sdp.model import SessionDescription
from softphone.sip.message import Response
from tests.loopback.test_config_effects_more import (
    HOST,
    NO_VIDEO,
    Invite,
    MediaSockets,
    SipSocket,
    _tag_of,
    offer,
    only_call,
    rc_file,
    unique,
)

PUBLIC = "198.51.100.7"


def _call(softphone: Any, rc: Path) -> tuple[Response, SessionDescription, dict[str, Any], int]:
    """``answer --auto --once`` takes our INVITE: its 200, the answer's SDP, the call's summary, its port."""
    phone = softphone("-c", rc, "--bind", HOST, "answer", "--auto", "--once")
    sip, media = SipSocket(), MediaSockets()
    try:
        invite = Invite(sip, (HOST, phone.port()), offer(media.audio_port)).send()
        while True:
            message, _, _ = sip.receive(30)
            if isinstance(message, Response) and message.call_id == invite.call_id and message.status >= 200:
                break
        assert message.status == 200, message
        invite.responses.append((message, 0.0))
        to_tag = _tag_of(message.headers.get("To") or "")
        local = f"sip:alice@{HOST}:{phone.port()}"  # where a NAT would forward the public address
        invite._send("ACK", local, invite._headers("ACK", 1, unique("z9hG4bK-ack-"), to_tag))
        invite._send("BYE", local, invite._headers("BYE", 2, unique("z9hG4bK-bye-"), to_tag))
        assert phone.wait(20) == 0, phone.describe()
        return message, SessionDescription.parse(message.body), only_call(phone), phone.port()
    finally:
        sip.close()
        media.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("policy", ["1", "nat_address"])
def test_nat_address_is_advertised_in_contact_and_sdp(softphone: Any, tmp_path: Path, policy: str) -> None:
    rc = rc_file(tmp_path, f"[net]\nnat_address={PUBLIC}\nfirewall_policy={policy}\n" + NO_VIDEO)
    ok, answer, summary, port = _call(softphone, rc)
    (contact,) = ok.contacts
    assert (contact.uri.host, contact.uri.port) == (PUBLIC, port)
    assert answer.connection is not None and answer.connection.address == PUBLIC
    assert summary["advertised"] == f"{PUBLIC}:{port}"


@pytest.mark.timeout(60)
def test_firewall_policy_none_advertises_the_local_address(softphone: Any, tmp_path: Path) -> None:
    rc = rc_file(tmp_path, f"[net]\nnat_address={PUBLIC}\nfirewall_policy=none\n" + NO_VIDEO)
    ok, answer, summary, port = _call(softphone, rc)
    (contact,) = ok.contacts
    assert (contact.uri.host, contact.uri.port) == (HOST, port)
    assert answer.connection is not None and answer.connection.address == HOST
    assert summary["advertised"] == f"{HOST}:{port}"
