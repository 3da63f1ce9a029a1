"""The ``softphone`` command: argument parsing, one function per subcommand, exit codes."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from softphone import __version__
from softphone.call.states import CallResult, EndCause, Progress
from softphone.config import Config, default_config, default_config_path, load
from softphone.errors import (
    AuthenticationFailed,
    CallFailed,
    ConfigError,
    NoResponse,
    ParseError,
    SoftphoneError,
    TransportError,
    UsageError,
)
from softphone.events import CallSummary, Devices, PhoneEvent, RegistrationEvent, StateEvent, Summary
from softphone.net.loops import run
from softphone.output import Output
from softphone.report import check_report_path, numbered

log = logging.getLogger("softphone")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        words = " ".join(str(a.metavar or a.dest) for a in self._get_positional_actions())
        raise UsageError(f"{message}\nusage: {self.prog} [options] {words}; see '{self.prog} --help'")


def _port(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 0..65535: {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options every command takes, before or after its name; after it, only what is
    given there overrides (the defaults come from the main parser)."""

    def add(*names: str, default: Any = None, **kw: Any) -> None:
        parser.add_argument(*names, default=default if defaults else argparse.SUPPRESS, **kw)

    add("-c", "--config", metavar="FILE",
        help="INI file (default: $SOFTPHONE_CONFIG, else ~/.config/softphone/softphonerc, else built-in defaults)")
    add("--bind", metavar="ADDR", help="local IP address to listen on and advertise")
    add("--sip-port", type=_port, metavar="N", help="SIP port for UDP and TCP (0 = any free port)")
    add("--rtp-port", type=_port, metavar="N", help="first RTP port (audio N, video N+2; 0 = any)")
    add("--t1-ms", type=int, metavar="MS", help="SIP timer T1 in milliseconds (default 500)")
    add("--account", metavar="URI", help="use this account (e.g. sip:alice@example.com) instead of the config's: "
        "registered at its domain; the password comes from $SOFTPHONE_PASSWORD or is asked for")
    add("-v", "--verbose", action="count", default=0, help="more logging; -vv prints SIP messages")
    add("-q", "--quiet", action="store_true", default=False, help="errors only: no warnings, no event lines")
    add("--log-file", metavar="FILE", help="write the log to FILE instead of the terminal")
    add("--json", action="store_true", default=False,
        help="one JSON object per line for each event, then a summary")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="softphone", description="A scriptable SIP softphone.")
    parser.add_argument("--version", action="version", version=f"softphone {__version__}")
    _global_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_parser = sub.add_parser

    def add_parser(name: str, **kw: Any) -> argparse.ArgumentParser:
        """A subcommand that also takes the global options after its name (``call URI --json -v``)."""
        p = _add_parser(name, **kw)
        _global_options(p, defaults=False)
        return p

    def media_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--no-video", action="store_true", help="audio only")
        p.add_argument("--audio-codec", metavar="NAME", help="offer/accept only this audio codec (e.g. PCMU)")
        p.add_argument("--video-codec", metavar="NAME", help="offer/accept only this video codec (e.g. VP8)")
        p.add_argument("--audio-source", metavar="DEV",
                       help="what to send: 'pyaudio: NAME|INDEX', 'tone: 440', 'file: in.wav', 'silence:'")
        p.add_argument("--audio-sink", metavar="DEV", help="where received audio goes: 'pyaudio: NAME', "
                       "'file: out.wav', 'null:'")
        p.add_argument("--dtmf", metavar="DIGITS", help="send these DTMF digits (RFC 4733) once the call is up")
        p.add_argument("--video-source", metavar="DEV",
                       help="what to film: 'opencv: 0' (camera), 'opencv: clip.mp4', 'pattern:', 'null:'")
        p.add_argument("--video-sink", metavar="DEV", help="where remote video goes: 'opencv:' (a window), "
                       "'file: out.mp4', 'null:'")
        p.add_argument("--video-size", metavar="SIZE", help="picture size: vga, 720p, 640x480... ([video] size)")
        p.add_argument("--fps", metavar="N", help="video frame rate ([video] framerate)")
        p.add_argument("--level", type=int, choices=range(4), default=0, metavar="0-3",
                       help="video quality level: 0 full size every frame; higher = smaller, fewer frames")
        p.add_argument("--report", metavar="FILE.png", help="draw the call's quality over time (bitrate, loss, "
                       "jitter, RTT, MOS, fps) into this PNG; answer numbers the later calls' FILE-2.png ...")

    call = add_parser("call", help="call a SIP URI")
    call.add_argument("uri", help="who to call, e.g. sip:alice@10.0.0.2")
    call.add_argument("--duration", type=_seconds, metavar="S", help="hang up after S seconds in the call")
    call.add_argument("--transport", choices=("udp", "tcp"), help="transport for this call")
    call.add_argument("--timeout", type=_seconds, metavar="S", help="give up (CANCEL) if not answered within S seconds")
    media_options(call)

    answer = add_parser("answer", help="wait for incoming calls")
    answer.add_argument("--auto", action="store_true", help="answer every call")
    answer.add_argument("--delay", type=_seconds, default=None, metavar="S", help="answer after S seconds of ringing")
    answer.add_argument("--allow", nargs="+", default=[], metavar="PATTERN",
                        help="only accept callers matching these (the authenticated user when there is one)")
    answer.add_argument("--deny", nargs="+", default=[], metavar="PATTERN", help="refuse callers matching these")
    answer.add_argument("--max-calls", type=int, metavar="N", help="simultaneous calls; more get 486 Busy Here")
    answer.add_argument("--once", action="store_true", help="exit after the first call ends")
    answer.add_argument("--reject", type=int, metavar="CODE", help="answer every call with this final status")
    answer.add_argument("--duration", type=_seconds, metavar="S", help="hang up each call after S seconds")
    media_options(answer)

    add_parser("shell", help="an interactive console: call, answer, hold, transfer ... ('help' inside)")
    add_parser("demo", help="call a built-in auto-answer peer on loopback and print the timeline")
    add_parser("devices", help="list the sound devices and cameras")
    register = add_parser("register", help="register the config's accounts ([proxy_N]) and keep them fresh")
    register.add_argument("--once", action="store_true", help="register, report, unregister and exit")
    register.add_argument("--timeout", type=_seconds, default=15.0, metavar="S",
                          help="with --once: give up after S seconds (default 15)")
    return parser


def _load_config(args: argparse.Namespace) -> Config:
    path = args.config or default_config_path()
    config = load(path) if path else default_config()
    if args.sip_port is not None:
        # TCP on the same port; for port 0 (any free port) that is -1, linphone's "any free port"
        tcp_port = -1 if args.sip_port == 0 else args.sip_port
        config = config.with_values("sip", sip_port=args.sip_port, sip_tcp_port=tcp_port)
    if args.t1_ms is not None:
        if args.t1_ms <= 0:
            raise UsageError("--t1-ms must be positive")
        config = config.with_values("sip", t1_ms=args.t1_ms)
    if getattr(args, "video_size", None) is not None:
        config = config.with_values("video", size=args.video_size)
    if getattr(args, "fps", None) is not None:
        config = config.with_values("video", framerate=args.fps)
    if args.rtp_port is not None:
        port = args.rtp_port
        config = config.with_values(
            "rtp", audio_rtp_port=(port, port), video_rtp_port=(port + 2, port + 2) if port else (0, 0)
        )
    if args.account:
        config = _with_account(config, args.account)
    if config.misc.json:
        args.json = True  # [misc] json=1: as if --json were given
    if not args.verbose and not args.quiet:
        logging.getLogger().setLevel(config.misc.log_level.upper())  # [misc] log_level: the level without -v
    return config


def _with_account(config: Config, uri: str) -> Config:
    """``--account sip:alice@example.com``: the config's accounts replaced by this one, registered at its
    domain; the password from $SOFTPHONE_PASSWORD, else asked for on a terminal, never from the command line."""
    import getpass
    import os

    from softphone.config.schema import AuthInfo, ProxyConfig
    from softphone.sip.uri import SipUri

    try:
        aor = SipUri.parse(uri.strip())
    except ParseError as exc:
        raise UsageError(f"--account: not a SIP URI: {uri!r} ({exc})") from None
    if not aor.user:
        raise UsageError(f"--account needs a user part, e.g. sip:alice@{aor.host}")
    password = os.environ.get("SOFTPHONE_PASSWORD")
    if password is None and sys.stdin.isatty():
        password = getpass.getpass(f"password for {aor.user}@{aor.host}: ")
    registrar = f"{aor.scheme}:{aor.host_port}"
    proxy = ProxyConfig(0, reg_proxy=registrar, reg_identity=f"{aor.scheme}:{aor.user}@{aor.host_port}")
    auths = (AuthInfo(0, username=aor.user, passwd=password),) if password else ()
    config = config.replace(proxies=(proxy,), auth_infos=auths)
    return config.with_values("sip", default_proxy=0)


def _setup_logging(verbose: int, quiet: bool = False, log_file: str | None = None) -> None:
    level = logging.ERROR if quiet else logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 \
        else logging.DEBUG
    try:
        handler = logging.FileHandler(log_file, encoding="utf-8") if log_file else logging.StreamHandler(sys.stderr)
    except OSError as exc:
        raise UsageError(f"cannot write the log file {log_file}: {exc.strerror or exc}") from None
    logging.basicConfig(level=level, handlers=[handler], format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("softphone.wire").setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    # numpy's OpenBLAS would start a thread per further processor, each spinning for about
    # 100 ms of CPU whenever it waits for work; the phone's vectors are a few hundred samples
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:  # plain ``softphone``: the console on a terminal
            if not (sys.stdin.isatty() and sys.stdout.isatty()):
                raise UsageError("a command is needed (call, answer, register, shell, devices, demo); see --help")
            args.command = "shell"
        _setup_logging(args.verbose, args.quiet, args.log_file)
        config = _load_config(args)
        command: Callable[[argparse.Namespace, Config, Output], Coroutine[Any, Any, int]] = COMMANDS[args.command]
        out = Output(args.json, quiet=args.quiet)
        try:
            return run(command(args, config, out), config.misc.event_loop, config.path)
        finally:
            _flush_quietly(out)
    except SoftphoneError as exc:
        print(f"softphone: {exc}", file=sys.stderr)
        return exc.exit_code
    except ParseError as exc:
        print(f"softphone: {exc}", file=sys.stderr)
        return UsageError.exit_code
    except KeyboardInterrupt:
        return 130


def _flush_quietly(out: Output) -> None:
    """The last lines, as the process ends: a reader that has gone (a closed pipe) loses them."""
    try:
        out.flush()
    except (OSError, ValueError):
        pass


def _on_terminal(args: argparse.Namespace) -> bool:
    return not args.json and sys.stdin.isatty() and sys.stdout.isatty()


def _set_all(events: tuple[asyncio.Event, ...]) -> None:
    for event in events:
        event.set()


def _stop_on_signals(*events: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, _set_all, events)
        except (NotImplementedError, RuntimeError):
            pass


def _media_choice(args: argparse.Namespace) -> Any:
    """The media options of ``call``/``answer``, checked before anything is sent."""
    from softphone.codecs.dtmf import DTMF_EVENTS
    from softphone.devices import registry as device_registry
    from softphone.session import MediaChoice

    for slot, spec in (("audio_source", args.audio_source), ("audio_sink", args.audio_sink),
                       ("video_source", args.video_source), ("video_sink", args.video_sink)):
        if spec is not None:
            device_registry.resolve(slot, spec)
    if args.dtmf is not None and (not args.dtmf or any(c.upper() not in DTMF_EVENTS for c in args.dtmf)):
        raise UsageError(f"--dtmf takes digits from {DTMF_EVENTS}, got {args.dtmf!r}")
    return MediaChoice(args.audio_codec, args.video_codec, not args.no_video, args.audio_source, args.audio_sink,
                       args.video_source, args.video_sink, args.level)


async def _in_call(session: Any, dtmf: str | None, duration: float | None) -> None:
    """What the user asked for once a call is up: send DTMF, hang up after a while."""
    if dtmf:
        session.send_dtmf(dtmf)
    if duration is not None:
        await asyncio.sleep(duration)
        if not session.done.done():
            session.hangup()


def _show_quality(session: Any, out: Output) -> None:
    """On a terminal: the call's figures in the status line, each second."""
    if out.live:
        session.on_quality(lambda sample: out.status(sample.status_line()))


async def _write_report(path: Path, session: Any) -> bool:
    """Draw the call's quality into ``path`` (off the event loop); False, said in one line, if it cannot."""
    from softphone.report import write_report

    title = f"call {session.call_id} with {session.call.remote_party}"
    history = list(session.quality_history)
    try:
        await asyncio.get_running_loop().run_in_executor(None, write_report, path, history, title)
    except (OSError, ValueError) as exc:
        print(f"softphone: cannot write the report {path}: {exc}", file=sys.stderr)
        return False
    return True


def _report_path(args: argparse.Namespace) -> Path | None:
    return check_report_path(args.report) if args.report else None


async def cmd_call(args: argparse.Namespace, config: Config, out: Output) -> int:
    from softphone.phone import Phone

    media = _media_choice(args)
    report = _report_path(args)
    phone = Phone(config, bind=args.bind, on_event=out.event)
    phone.media_choice = media  # what the phone loads ahead of the call
    phone.keep_quality_history = report is not None
    target = phone.target(args.uri)  # a mistake in the URI is reported before anything starts
    stop = asyncio.Event()
    _stop_on_signals(stop)
    shown = False  # the summary, once the call has ended
    await phone.start()
    try:
        session = await phone.call(target, transport=args.transport, media=media)
        _show_quality(session, out)

        async def while_up() -> None:
            try:
                await session.wait_state("confirmed", args.timeout if args.timeout is not None else 24 * 3600)
            except (asyncio.TimeoutError, SoftphoneError):
                return  # not answered in time (or ended): the call is cancelled below
            await _in_call(session, args.dtmf, args.duration)
            await asyncio.Event().wait()  # stay until the call ends

        tasks: set[asyncio.Future[Any]] = {asyncio.create_task(stop.wait()), asyncio.create_task(while_up()),
                                           asyncio.ensure_future(asyncio.shield(session.done))}
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        if session.done.done() and not stop.is_set():
            shown = True
            out.event(Summary(session.done.result().as_summary()))
            await phone.settle()  # our BYE may still be on its way
    finally:
        await phone.close()  # hangs up (BYE or CANCEL) a call still in progress
    summary = session.done.result() if session.done.done() else session.summary()
    if not shown:
        out.event(Summary(summary.as_summary()))
    code = _exit_code(summary)
    if report is not None and not await _write_report(report, session) and code == 0:
        code = 1
    return code


def _exit_code(summary: CallSummary) -> int:
    result, reason, code = summary.result, summary.reason or "", summary.sip_code
    if result in (CallResult.COMPLETED, CallResult.CANCELLED):
        return 0
    if result == CallResult.TIMEOUT:
        print(f"softphone: {NoResponse('no response from the peer')}", file=sys.stderr)
        return NoResponse.exit_code
    if result == CallResult.ERROR and summary.cause in (EndCause.TRANSPORT_ERROR, EndCause.NO_RTP):
        print(f"softphone: {TransportError(reason or 'transport error')}", file=sys.stderr)
        return TransportError.exit_code
    print(f"softphone: {CallFailed(code or 0, reason)}", file=sys.stderr)
    return CallFailed.exit_code


async def cmd_answer(args: argparse.Namespace, config: Config, out: Output) -> int:
    from softphone.callers import open_door
    from softphone.phone import Phone, incoming_policy

    if args.reject is not None and not 300 <= args.reject <= 699:
        raise UsageError("--reject needs a final failure status 300..699")
    media = _media_choice(args)
    report = _report_path(args)
    reports: list[asyncio.Task[bool]] = []
    answered_calls: dict[str, Any] = {}
    stop = asyncio.Event()
    in_call: set[asyncio.Task[None]] = set()
    question: Any = None  # on a terminal without --auto: each incoming call asks

    def on_event(event: PhoneEvent) -> None:
        out.event(event)
        if question is not None:
            question.on_event(event)
        if isinstance(event, StateEvent) and event.state == Progress.CONFIRMED and event.call_id in phone.sessions:
            session = phone.sessions[event.call_id]
            if report is not None:  # its figures are drawn when it ends
                answered_calls[event.call_id] = session
            _show_quality(session, out)
            if args.dtmf or args.duration is not None:
                task = asyncio.get_running_loop().create_task(_in_call(session, args.dtmf, args.duration))
                in_call.add(task)
                task.add_done_callback(in_call.discard)
        if isinstance(event, CallSummary) and report is not None and event.call_id in answered_calls:
            path = numbered(report, len(reports) + 1)
            ended = answered_calls.pop(event.call_id)
            reports.append(asyncio.get_running_loop().create_task(_write_report(path, ended)))
        if isinstance(event, CallSummary) and args.once:
            # a call that a transfer placed keeps --once waiting until it ends too
            if not any(cid != event.call_id and not s.done.done() for cid, s in phone.sessions.items()):
                stop.set()

    phone = Phone(config, bind=args.bind, on_event=on_event)
    phone.keep_quality_history = report is not None
    given = {"delay": args.delay, "max_calls": args.max_calls, "allow": tuple(args.allow) or None}
    phone.policy = incoming_policy(config, reject=args.reject,
                                   **{key: value for key, value in given.items() if value is not None})
    phone.policy = dataclasses.replace(phone.policy, deny=phone.policy.deny + tuple(args.deny))
    if args.auto:
        phone.policy = dataclasses.replace(phone.policy, auto_answer=True)
    if (warning := open_door(phone.policy, phone.bind)) is not None:
        log.warning("%s", warning)
    phone.media_choice = media
    if not phone.policy.auto_answer and args.reject is None and _on_terminal(args):
        from softphone.shell import AnswerQuestion

        question = AnswerQuestion(phone, print)
        question.start()
    signalled = asyncio.Event()
    _stop_on_signals(stop, signalled)
    await phone.start()
    if any(a.register for a in phone.accounts):
        phone.register()  # calls to our accounts reach this phone
    try:
        await stop.wait()
        if args.once and not signalled.is_set():
            await phone.settle()  # our BYE may still be on its way
    finally:
        if question is not None:
            question.stop()
        for task in list(in_call):
            task.cancel()
        await phone.close()
    calls = {"calls": [s.as_summary() for s in phone.finished], "answered": phone.answered_calls}
    if phone.ended_calls > len(phone.finished):  # the earliest are not kept
        calls["ended"] = phone.ended_calls
    out.event(Summary(calls))
    written = await asyncio.gather(*reports)
    return 0 if all(written) else 1


async def cmd_register(args: argparse.Namespace, config: Config, out: Output) -> int:
    from softphone.phone import Phone

    changed = asyncio.Event()

    def on_event(event: PhoneEvent) -> None:
        out.event(event)
        if isinstance(event, RegistrationEvent):
            changed.set()

    phone = Phone(config, bind=args.bind, on_event=on_event, media=False)
    if not any(a.register for a in phone.accounts):
        raise UsageError("no account to register: add a [proxy_0] section (reg_proxy, reg_identity) to the config")
    stop = asyncio.Event()
    _stop_on_signals(stop)
    await phone.start()
    registrations = phone.register()
    code = 0
    try:
        if args.once:
            code = await _registered_once(registrations, changed, stop, args.timeout, phone.network.tls_failures)
        else:
            await stop.wait()
    finally:
        await phone.close()
    out.event(Summary({"registrations": [
        {"account": str(r.aor.uri), "state": r.state, "expires": r.granted} for r in registrations]}))
    return code


async def _registered_once(registrations: list[Any], changed: asyncio.Event, stop: asyncio.Event,
                           timeout: float, tls_failures: dict[Any, str]) -> int:
    """Wait until every account is registered or has failed; the exit code says which (a TLS
    connection refused on the way is a transport error, said in its own words)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not stop.is_set():
        if tls_failures:
            print(f"softphone: {next(iter(tls_failures.values()))}", file=sys.stderr)
            return TransportError.exit_code
        failed = [r for r in registrations if r.state == "failed"]
        if failed:
            reason = failed[0].last_reason or "registration refused"
            print(f"softphone: {failed[0].aor.uri}: {reason}", file=sys.stderr)
            return AuthenticationFailed.exit_code if failed[0].auth_failed else CallFailed.exit_code
        if all(r.registered for r in registrations):
            return 0
        remaining = deadline - loop.time()
        if remaining <= 0:
            waiting = next(r for r in registrations if not r.registered)
            print(f"softphone: {waiting.aor.uri}: {waiting.last_reason or 'no answer from the registrar'}",
                  file=sys.stderr)
            return NoResponse.exit_code
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), min(remaining, 0.5))
        except asyncio.TimeoutError:
            pass
    return 0


async def cmd_devices(args: argparse.Namespace, config: Config, out: Output) -> int:
    from softphone.devices import list_audio_devices, list_cameras

    devices = list_audio_devices()
    cameras = list_cameras()
    if args.json:
        out.event(Devices(tuple(devices), tuple(cameras)))
        return 0
    if not devices:
        print("no sound devices found (PortAudio)")
    for device in devices:
        kinds = []
        if device.get("max_input_channels"):
            kinds.append("capture")
        if device.get("max_output_channels"):
            kinds.append("playback")
        marks = [m for m, key in (("default in", "is_default_input"), ("default out", "is_default_output"))
                 if device.get(key)]
        extra = f" ({', '.join(marks)})" if marks else ""
        print(f"pyaudio: {device['index']:<3} {device['name']}  [{'/'.join(kinds)}]{extra}")
    if not cameras:
        print("no cameras found (video4linux); 'pattern:' or 'opencv: FILE' can stand in")
    for camera in cameras:
        print(f"{camera['spec']:<12} {camera['name']} ({camera['path']})  [camera]")
    return 0


async def cmd_shell(args: argparse.Namespace, config: Config, out: Output) -> int:
    from softphone.shell import run_shell

    return await run_shell(config, args.bind)


async def cmd_demo(args: argparse.Namespace, config: Config, out: Output) -> int:
    from softphone.demo import run_demo

    stop = asyncio.Event()
    _stop_on_signals(stop)
    return await run_demo(config, out, as_json=args.json, stop=stop)


COMMANDS: dict[str, Callable[[argparse.Namespace, Config, Output], Coroutine[Any, Any, int]]] = {
    "call": cmd_call,
    "answer": cmd_answer,
    "demo": cmd_demo,
    "shell": cmd_shell,
    "devices": cmd_devices,
    "register": cmd_register,
}

__all__ = ["ConfigError", "build_parser", "main"]
