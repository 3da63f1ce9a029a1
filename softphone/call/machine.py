"""The Call: one INVITE dialog as an explicit state machine, joining SIP and SDP.

Pure: SIP events and user actions go in, commands come out (send this request or
response, start/update/stop media, the call ended). The phone carries them out.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from softphone.call import transfer
from softphone.call.commands import (
    ALLOW,
    SDP,
    TRANSITIONS,
    CallEnded,
    CallSetup,
    Command,
    MediaUpdate,
    SendRequest,
    SendResponse,
    StateChanged,
)
from softphone.call.states import CallResult, CallState, Direction, EndCause, Progress
from softphone.errors import SdpError, StateError
from softphone.sdp.model import SessionDescription
from softphone.sdp.negotiate import (
    NegotiatedStream,
    SessionConfig,
    answer_offer,
    build_offer,
    process_answer,
)
from softphone.sip.auth import AuthError
from softphone.sip.authenticator import Authenticator
from softphone.sip.dialog import Dialog, ack_for_2xx, cancel_for, random_token
from softphone.sip.endpoint import build_response
from softphone.sip.headers import NameAddress
from softphone.sip.message import Headers, Request, Response
from softphone.sip.randomness import RANDOM
from softphone.sip.refer import embedded_headers
from softphone.sip.uri import SipUri

log = logging.getLogger(__name__)


@dataclass
class Call:
    role: str  # "uac" or "uas"
    setup: CallSetup
    call_id: str
    state: CallState = CallState.IDLE
    dialog: Dialog | None = None
    invite: Request | None = None
    streams: tuple[NegotiatedStream, ...] = ()
    local_sdp: SessionDescription | None = None
    remote_sdp: SessionDescription | None = None
    held: bool = False
    final_code: int | None = None
    result: CallResult | None = None
    reason: str | None = None  # why we ended the call ourselves, when it was not the user's wish
    cause: EndCause | None = None  # the same, for decisions
    _local_tag: str = field(default_factory=random_token)
    _sdp_version: int = 0
    _sdp_id: int = field(default_factory=lambda: RANDOM.one_to(31))
    _ack: Request | None = None
    _cancel_pending: bool = False
    _got_provisional: bool = False
    _reinvite: Request | None = None
    _reinvite_offer: SessionDescription | None = None
    _bye: Request | None = None
    transfers: transfer.Transfers = field(default_factory=transfer.Transfers)
    _auth: Authenticator = field(init=False)  # made in __post_init__, with the setup's credentials
    _contact_uri: tuple[CallSetup, SipUri] | None = None  # for this setup

    def __post_init__(self) -> None:
        self._auth = Authenticator(self.setup.credentials)

    # ---------------------------------------------------------------- table

    def _go(self, event: str) -> CallState:
        try:
            self.state = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise StateError("Call", self.state, event) from None
        return self.state

    @property
    def ended(self) -> bool:
        return self.state == CallState.TERMINATED

    @property
    def direction(self) -> Direction:
        return Direction.OUTGOING if self.role == "uac" else Direction.INCOMING

    @property
    def remote_party(self) -> str:
        if self.dialog is not None:
            return str(self.dialog.remote_uri.uri)
        if self.invite is not None:
            return str(self.invite.to_addr.uri if self.role == "uac" else self.invite.from_addr.uri)
        return ""

    def _contact(self) -> SipUri:
        """One URI for every message of the call (its text is made once), until the setup changes."""
        made = self._contact_uri
        if made is None or made[0] is not self.setup:
            made = self._contact_uri = (self.setup, self.setup.local.contact_uri(self.setup.identity.uri.as_sip().user))
        return made[1]

    def _session(self, direction: str | None = None) -> SessionConfig:
        self._sdp_version += 1
        streams = self.setup.media.streams
        if direction is not None:
            streams = tuple(replace(s, direction=direction) if s.port else s for s in streams)
        return replace(self.setup.media, session_id=self._sdp_id, session_version=self._sdp_version, streams=streams)

    def lingering(self) -> Call:
        """What the user agent keeps of an ended call for late retransmissions, which need only
        the INVITE's identity: a copy without offer, answer, streams and INVITE body (a phone
        under load keeps thousands; the session's ``Call`` keeps everything)."""
        kept = copy.copy(self)
        kept.invite = self.invite.identity() if self.invite is not None else None
        kept.local_sdp = kept.remote_sdp = kept._reinvite_offer = kept._reinvite = kept._contact_uri = None
        kept.streams = ()
        return kept

    def _end(self, result: CallResult, code: int | None, reason: str, cause: EndCause) -> list[Command]:
        self.result = result
        self.final_code = code
        self.cause = self.cause or cause
        return [StateChanged(Progress.ENDED, code), CallEnded(result, code, reason, self.cause)]

    # ------------------------------------------------------------ caller side

    @classmethod
    def outgoing(cls, target: SipUri, setup: CallSetup, *, to: NameAddress | None = None) -> tuple[Call, list[Command]]:
        call = cls("uac", setup, call_id=f"{random_token(16)}@{setup.local.host}")
        target, uri_headers = embedded_headers(target)  # a Refer-To's Replaces (RFC 3891)
        call._go("invite")
        offer = build_offer(call._session())
        call.local_sdp = offer
        body = str(offer).encode()
        pairs: list[tuple[str, str]] = [
            ("Via", str(setup.local.via())),
            ("Max-Forwards", "70"),
            ("From", str(setup.identity.with_tag(call._local_tag))),
            ("To", str(to or NameAddress(target.without_params("transport")))),
            ("Call-ID", call.call_id),
            ("CSeq", f"{RANDOM.one_to(20)} INVITE"),
            ("Contact", f"<{call._contact()}>"),
        ]
        pairs += [("Route", str(r)) for r in setup.outbound_route]
        pairs += [("Allow", ALLOW), *uri_headers]
        if setup.user_agent:
            pairs.append(("User-Agent", setup.user_agent))
        pairs.append(("Content-Type", SDP))
        call.invite = Request("INVITE", target, Headers.of(*pairs), body)
        hop = setup.outbound_route[0].uri.as_sip() if setup.outbound_route else target
        return call, [SendRequest(call.invite, hop), StateChanged(Progress.CALLING)]

    def on_response(self, response: Response, request: Request) -> list[Command]:
        if request.method == "INVITE" and self._reinvite is not None and request.cseq == self._reinvite.cseq:
            return self._on_reinvite_response(response)
        if request.method == "BYE":
            if response.status in (401, 407) and self._bye is not None and request.cseq == self._bye.cseq:
                return self._bye_with_credentials(response)
            return self._end_after_bye(response.status)
        if request.method == "REFER":
            return transfer.on_refer_response(self, response, request)
        if request.method == "NOTIFY":
            transfer.on_notify_response(self, response)
        if request.method != "INVITE" or self.invite is None or request.cseq != self.invite.cseq:
            return []
        status = response.status
        if status < 200:
            return self._on_provisional(response)
        if status < 300:
            return self._on_answer(response)
        if status in (401, 407) and self.state in (CallState.CALLING, CallState.EARLY) and self.setup.credentials:
            return self._invite_with_credentials(response)
        if self.state in (CallState.CALLING, CallState.EARLY, CallState.CANCELLING):
            if self.state == CallState.CANCELLING and status == 487:
                self._go("failed")
                return self._end(CallResult.CANCELLED, status, response.reason, EndCause.CANCELLED)
            self._go("failed")
            return self._end(CallResult.REJECTED, status, response.reason, EndCause.REJECTED)
        return []

    def _invite_with_credentials(self, response: Response) -> list[Command]:
        """RFC 3261 §22.2: re-send the INVITE with credentials, a new CSeq and a new branch."""
        assert self.invite is not None
        try:
            self._auth.challenged(response)
        except AuthError as exc:
            self._go("failed")
            return self._end(CallResult.REJECTED, response.status, str(exc), EndCause.AUTH_FAILED)
        self._go("challenge")
        invite = self.invite
        number = invite.cseq.number + 1
        headers = (
            invite.headers.set("CSeq", f"{number} INVITE")
            .remove("Via")
            .add("Via", str(self.setup.local.via()), first=True)
        )
        self.invite = self._auth.authorize(Request("INVITE", invite.uri, headers, invite.body))
        self._got_provisional = False
        return [SendRequest(self.invite, self._first_hop()), StateChanged(Progress.AUTHENTICATING, response.status)]

    def _bye_with_credentials(self, response: Response) -> list[Command]:
        try:
            self._auth.challenged(response)
        except AuthError:
            return self._end_after_bye(response.status)
        return [self._send_bye()]

    def _send_bye(self) -> SendRequest:
        """A BYE in our dialog, with credentials for every realm that challenged us."""
        assert self.dialog is not None
        self._bye = self._auth.authorize(
            self.dialog.create_request("BYE", self.setup.local, None, user_agent=self.setup.user_agent)
        )
        return SendRequest(self._bye, self.dialog.next_hop())

    def _first_hop(self) -> SipUri:
        assert self.invite is not None
        return self.setup.outbound_route[0].uri.as_sip() if self.setup.outbound_route else self.invite.uri.as_sip()

    def _on_provisional(self, response: Response) -> list[Command]:
        if status_is_trying(response):
            return [StateChanged(Progress.TRYING, 100)] if self.state == CallState.CALLING else []
        commands: list[Command] = []
        first = not self._got_provisional
        self._got_provisional = True
        if self.state == CallState.CANCELLING:
            if first and self._cancel_pending:
                return self._send_cancel()
            return []
        self._go("provisional")
        name = Progress.RINGING if response.status == 180 else Progress.PROGRESS
        commands.append(StateChanged(name, response.status))
        commands += self._early_media(response)
        if self._cancel_pending and first:
            commands += self._send_cancel()
        return commands

    def _early_media(self, response: Response) -> list[Command]:
        """An SDP answer in a provisional response (typically 183) starts early media
        (RFC 3960 gateway model); the 2xx's answer then confirms or updates it."""
        if not response.body or response.content_type != SDP or self.local_sdp is None:
            return []
        try:
            answer = SessionDescription.parse(response.body)
            streams = tuple(process_answer(self.local_sdp, answer))
        except SdpError as exc:
            log.info("ignoring bad SDP in %s: %s", response.status, exc)
            return []
        self.streams, self.remote_sdp = streams, answer
        return [StateChanged(Progress.EARLY_MEDIA, response.status), MediaUpdate(streams)]

    def _on_answer(self, response: Response) -> list[Command]:
        assert self.invite is not None
        if self.state in (CallState.CONFIRMED, CallState.TERMINATING, CallState.TERMINATED):
            # a retransmitted 2xx: RFC 3261 §13.2.2.4 "The UAC core MUST generate an ACK
            # request for each 2xx received from the transaction layer."
            if self._ack is not None and self.dialog is not None and response.to_addr.tag == self.dialog.remote_tag:
                return [SendRequest(self._ack, self.dialog.next_hop())]
            return []
        self.dialog = Dialog.as_uac(self.invite, response)
        self._ack = ack_for_2xx(self.dialog, self.invite, self.setup.local, self.setup.user_agent)
        hop = self.dialog.next_hop()
        commands: list[Command] = [SendRequest(self._ack, hop)]
        if self.state == CallState.CANCELLING:
            # the 2xx crossed our CANCEL: acknowledge it, then hang up
            self._go("accepted")
            return [*commands, self._send_bye(), StateChanged(Progress.TERMINATING)]
        try:
            answer = SessionDescription.parse(response.body)
            assert self.local_sdp is not None
            self.streams = tuple(process_answer(self.local_sdp, answer))
            self.remote_sdp = answer
        except SdpError as exc:
            # RFC 3261 §13.2.2.4: a bad answer in a 2xx: acknowledge, then end the call.
            self._go("accepted")
            self._go("hangup")
            bye = self._send_bye()
            self.result, self.final_code, self.cause = CallResult.ERROR, 488, EndCause.BAD_SDP
            self.reason = f"bad SDP answer: {exc}"
            log.warning("bad SDP answer: %s", exc)
            return [*commands, bye, StateChanged(Progress.ERROR, 488), StateChanged(Progress.TERMINATING)]
        self._go("accepted")
        self.final_code = response.status
        answered = StateChanged(Progress.ANSWERED, response.status)
        return [answered, *commands, StateChanged(Progress.CONFIRMED, response.status), MediaUpdate(self.streams)]

    def _send_cancel(self) -> list[Command]:
        assert self.invite is not None
        self._cancel_pending = False
        return [SendRequest(cancel_for(self.invite), self.invite.uri.as_sip())]

    # ------------------------------------------------------------ callee side

    @classmethod
    def incoming(cls, request: Request, setup: CallSetup) -> tuple[Call, list[Command]]:
        """A new INVITE. Returns the call and, when the offer is unacceptable, its 488."""
        call = cls("uas", setup, call_id=request.call_id)
        call.invite = request
        call._go("offer")
        call.dialog = Dialog.as_uas(request, call._local_tag)
        if request.body:
            try:
                offer = SessionDescription.parse(request.body)
                answer, streams = answer_offer(offer, call._session())
            except SdpError as exc:
                call._go("reject")
                response = call._response(488, extra=(("Warning", f'304 softphone "{_clean(str(exc))}"'),))
                ended = call._end(CallResult.REJECTED, 488, str(exc), EndCause.BAD_SDP)
                return call, [SendResponse(request, response), *ended]
            call.remote_sdp, call.local_sdp, call.streams = offer, answer, tuple(streams)
        return call, [StateChanged(Progress.INCOMING)]

    def _response(self, status: int, *, body: bytes = b"", extra: tuple[tuple[str, str], ...] = ()) -> Response:
        assert self.invite is not None
        pairs = list(extra)
        if 100 < status < 300 and self.invite.method == "INVITE":
            pairs.append(("Contact", f"<{self._contact()}>"))
        if status >= 200:
            pairs += [("Allow", ALLOW)]
        return self._reply(self.invite, status, extra=pairs, body=body, to_tag=self._local_tag)

    def _reply(
        self, request: Request, status: int, *, extra: Iterable[tuple[str, str]] = (), body: bytes = b"",
        to_tag: str | None = None, reason: str | None = None,
    ) -> Response:
        """A response of ours to ``request``, naming us in Server (RFC 3261 §20.35)."""
        pairs = list(extra)
        if self.setup.user_agent:
            pairs.append(("Server", self.setup.user_agent))
        return build_response(request, status, reason, to_tag=to_tag, extra=pairs, body=body,
                              content_type=SDP if body else None)

    def ring(self) -> list[Command]:
        assert self.invite is not None
        self._go("ring")
        return [SendResponse(self.invite, self._response(180)), StateChanged(Progress.RINGING, 180)]

    def answer(self) -> list[Command]:
        assert self.invite is not None
        self._go("answer")
        if self.local_sdp is None:
            # no offer in the INVITE: RFC 3264 §5 — our offer goes in the 2xx, the answer in the ACK
            self.local_sdp = build_offer(self._session())
        response = self._response(200, body=str(self.local_sdp).encode())
        self.final_code = 200
        commands: list[Command] = [SendResponse(self.invite, response), StateChanged(Progress.ANSWERED, 200)]
        if self.streams:
            commands.append(MediaUpdate(self.streams))
        return commands

    def reject(self, status: int = 486, cause: EndCause = EndCause.DECLINED) -> list[Command]:
        assert self.invite is not None
        self._go("reject")
        response = self._response(status)
        return [SendResponse(self.invite, response), *self._end(CallResult.REJECTED, status, response.reason, cause)]

    # ------------------------------------------------------------ both sides

    def hangup(self, cause: EndCause = EndCause.LOCAL_HANGUP, reason: str | None = None) -> list[Command]:
        """End the call whatever its state: CANCEL, reject, or BYE. A cause other than a
        wish of ours (no RTP, no answer to our answer) makes the call's result an error."""
        if self.ended or self.state == CallState.TERMINATING:
            return []
        if cause not in _WISHED:
            self.result = CallResult.ERROR
        if self.cause is None or cause not in _WISHED:
            self.cause = cause
        if reason is not None:
            self.reason = reason
        if self.state in (CallState.CALLING, CallState.EARLY):
            self._go("cancel")
            if self._got_provisional:
                return [*self._send_cancel(), StateChanged(Progress.CANCELLING)]
            # RFC 3261 §9.1: "If no provisional response has been received, the CANCEL
            # request MUST NOT be sent; rather, the client MUST wait for the arrival of a
            # provisional response before sending the request."
            self._cancel_pending = True
            return [StateChanged(Progress.CANCELLING)]
        if self.state in (CallState.INCOMING, CallState.RINGING):
            return self.reject(480 if cause == EndCause.RING_TIMEOUT else 603, cause)
        if self.state in (CallState.CONFIRMED, CallState.ANSWERED):
            assert self.dialog is not None
            self._go("hangup")
            return [self._send_bye(), StateChanged(Progress.TERMINATING)]
        return []

    def hold(self) -> list[Command]:
        return self._reinvite_with("sendonly")

    def resume(self) -> list[Command]:
        return self._reinvite_with("sendrecv")

    def _reinvite_with(self, direction: str) -> list[Command]:
        if self.state != CallState.CONFIRMED or self.dialog is None:
            raise StateError("Call", self.state, "re-INVITE")
        if self._reinvite is not None:
            raise StateError("Call", "re-INVITE pending", "re-INVITE")
        offer = build_offer(self._session(direction))
        self._reinvite_offer = offer
        self._reinvite = self._auth.authorize(
            self.dialog.create_request(
                "INVITE",
                self.setup.local,
                self._contact(),
                user_agent=self.setup.user_agent,
                body=str(offer).encode(),
                content_type=SDP,
            )
        )
        self.held = direction != "sendrecv"
        return [SendRequest(self._reinvite, self.dialog.next_hop())]

    def _on_reinvite_response(self, response: Response) -> list[Command]:
        assert self._reinvite is not None and self.dialog is not None
        if response.status < 200:
            return []
        request, offer = self._reinvite, self._reinvite_offer
        self._reinvite = self._reinvite_offer = None
        if response.status >= 300:
            self.held = not self.held
            if response.status in (408, 481):
                # RFC 5057 §5.1: these responses end the dialog
                self._go("dialog_lost")
                return [self._send_bye(), StateChanged(Progress.TERMINATING)]
            return [StateChanged(Progress.REINVITE_FAILED, response.status)]
        self.dialog.update_from_response(response)
        ack = ack_for_2xx(self.dialog, request, self.setup.local, self.setup.user_agent)
        commands: list[Command] = [SendRequest(ack, self.dialog.next_hop())]
        try:
            assert offer is not None
            self.streams = tuple(process_answer(offer, SessionDescription.parse(response.body)))
            self.local_sdp = offer
        except SdpError as exc:
            log.warning("bad SDP in re-INVITE answer: %s", exc)
            return commands
        return [*commands, MediaUpdate(self.streams), StateChanged(Progress.HELD if self.held else Progress.RESUMED)]

    def on_request(self, request: Request) -> list[Command]:
        """A request inside this call's dialog (or a CANCEL of its INVITE)."""
        method = request.method
        if method == "CANCEL":
            return self._on_cancel(request)
        if method == "ACK":
            return self._on_ack(request)
        assert self.dialog is not None
        if not self.dialog.accept_remote_seq(request):
            return [SendResponse(request, self._reply(request, 500, extra=(("Retry-After", "1"),)))]
        if method == "BYE":
            ok = SendResponse(request, self._reply(request, 200))
            if self.state in (CallState.CONFIRMED, CallState.ANSWERED, CallState.TERMINATING):
                self._go("bye")
                result = self.result or CallResult.COMPLETED
                return [ok, *self._end(result, self.final_code or 200, "remote hangup", EndCause.REMOTE_HANGUP)]
            return [ok]
        if method == "INVITE":
            return self._on_reinvite(request)
        if method == "REFER":
            return transfer.on_refer(self, request)
        if method == "NOTIFY":
            return transfer.on_notify(self, request)
        if method == "OPTIONS":
            return [SendResponse(request, self._reply(request, 200, extra=(("Allow", ALLOW),)))]
        # the user agent answers the methods we do not support before they reach a call
        return [SendResponse(request, self._reply(request, 405, extra=(("Allow", ALLOW),)))]

    def _on_cancel(self, request: Request) -> list[Command]:
        ok = SendResponse(request, self._reply(request, 200, to_tag=self._local_tag))
        if self.state not in (CallState.INCOMING, CallState.RINGING) or self.invite is None:
            return [ok]
        self._go("cancelled")
        # RFC 3261 §9.2: "the UAS SHOULD then respond to the INVITE with a 487"
        terminated = SendResponse(self.invite, self._response(487))
        ended = self._end(CallResult.CANCELLED, 487, "cancelled by the caller", EndCause.CANCELLED_BY_CALLER)
        return [ok, terminated, *ended]

    def _on_ack(self, request: Request) -> list[Command]:
        if self.state != CallState.ANSWERED or self.invite is None or request.cseq.number != self.invite.cseq.number:
            return []
        self._go("ack")
        commands: list[Command] = [StateChanged(Progress.CONFIRMED, 200)]
        if not self.streams and request.body and self.local_sdp is not None:
            try:
                self.remote_sdp = SessionDescription.parse(request.body)
                self.streams = tuple(process_answer(self.local_sdp, self.remote_sdp))
                commands.append(MediaUpdate(self.streams))
            except SdpError as exc:
                log.warning("bad SDP answer in ACK: %s", exc)
                return [*commands, *self.hangup(EndCause.BAD_SDP, f"bad SDP answer in the ACK: {exc}")]
        return commands

    def _on_reinvite(self, request: Request) -> list[Command]:
        assert self.dialog is not None
        if self.state != CallState.CONFIRMED or self._reinvite is not None:
            # RFC 3261 §14.2: "A UAS that receives a second INVITE before it sends the
            # final response to a first INVITE with a lower CSeq ... MUST return a 500";
            # a re-INVITE crossing our own gets 491 (glare).
            status = 491 if self._reinvite is not None else 500
            return [SendResponse(request, self._reply(request, status))]
        if request.contacts:
            self.dialog.remote_target = request.contacts[0].uri.as_sip()
        body = b""
        streams = self.streams
        if request.body:
            try:
                offer = SessionDescription.parse(request.body)
                answer, negotiated = answer_offer(offer, self._session())
            except SdpError as exc:
                return [
                    SendResponse(
                        request,
                        self._reply(request, 488, extra=(("Warning", f'304 softphone "{_clean(str(exc))}"'),)),
                    )
                ]
            self.remote_sdp, self.local_sdp, streams = offer, answer, tuple(negotiated)
            body = str(answer).encode()
        elif self.local_sdp is not None:
            body = str(self.local_sdp).encode()
        pairs = (("Contact", f"<{self._contact()}>"), ("Allow", ALLOW))
        response = self._reply(request, 200, extra=pairs, body=body)
        self.streams = streams
        held = all(s.direction in ("recvonly", "inactive") for s in streams if not s.declined)
        state = Progress.HELD_BY_PEER if held else Progress.RESUMED
        return [SendResponse(request, response), MediaUpdate(self.streams), StateChanged(state)]

    def on_timeout(self, request: Request, timer: str = "B") -> list[Command]:
        """A client transaction of ours got no answer (Timer B or F) or could not be sent."""
        if request.method == "INVITE" and self.invite is not None and request.cseq == self.invite.cseq:
            if self.state in (CallState.CALLING, CallState.EARLY, CallState.CANCELLING):
                self._go("failed")
                if timer == "transport":
                    reason = "transport error: the peer could not be reached"
                    return self._end(CallResult.ERROR, None, reason, EndCause.TRANSPORT_ERROR)
                return self._end(CallResult.TIMEOUT, 408, "no response", EndCause.NO_RESPONSE)
        if request.method == "INVITE" and self._reinvite is not None and request.cseq == self._reinvite.cseq:
            return self._on_reinvite_response(Response(408, "Request Timeout", request.headers))
        if request.method == "BYE":
            return self._end_after_bye(408)
        if request.method == "REFER":
            return transfer.on_refer_timeout(self, request)
        if request.method == "CANCEL" and self.state == CallState.CANCELLING:
            self._go("failed")
            return self._end(CallResult.CANCELLED, None, "no answer to CANCEL", EndCause.CANCELLED)
        return []

    def on_answer_timeout(self) -> list[Command]:
        """Our 2xx was never acknowledged: RFC 3261 §13.3.1.4 "the UAS core SHOULD ... send a BYE"."""
        if self.state != CallState.ANSWERED or self.dialog is None:
            return []
        self._go("ack_timeout")
        self.result, self.final_code, self.cause = CallResult.ERROR, 408, EndCause.NO_ACK
        self.reason = "the peer never acknowledged our answer"
        return [self._send_bye(), StateChanged(Progress.TERMINATING)]

    def abandon(self) -> list[Command]:
        """Stop waiting for the answer to our BYE or CANCEL (the phone is shutting down)."""
        if self.state == CallState.CANCELLING:
            self._go("failed")
            return self._end(CallResult.CANCELLED, None, "cancelled", EndCause.CANCELLED)
        return self._end_after_bye(408)

    def on_bye_unanswered(self) -> list[Command]:
        """Our BYE got no final answer in the time we wait for one: the call is over all the same."""
        return self._end_after_bye(408)

    def _end_after_bye(self, status: int) -> list[Command]:
        if self.state != CallState.TERMINATING:
            return []
        self._go("bye_done")
        result, reason = self.result or CallResult.COMPLETED, self.reason or "local hangup"
        return self._end(result, self.final_code or 200, reason, self.cause or EndCause.LOCAL_HANGUP)


# hanging up for these causes is a normal end of the call
_WISHED = frozenset({EndCause.LOCAL_HANGUP, EndCause.WINDOW_CLOSED, EndCause.IN_CALL_TIMEOUT, EndCause.RING_TIMEOUT,
                     EndCause.TRANSFERRED})


def status_is_trying(response: Response) -> bool:
    return response.status == 100


def _clean(text: str) -> str:
    return text.replace('"', "'").replace("\r", " ").replace("\n", " ")[:120]
