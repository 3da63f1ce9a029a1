"""``softphone shell``: an interactive console in linphonec's words, over the Phone API.

On a terminal it reads lines with prompt_toolkit (history, completion of commands and of
URIs already used, notices printed above the line being typed); otherwise it reads
commands from standard input one line at a time, so a script can drive it too. Calls are
numbered 1, 2, ... as linphonec numbers them; a command without a number acts on the
current call: the one ringing for ``answer``/``decline``, else the newest live call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shlex
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from softphone.call.states import CallState, Direction, Progress
from softphone.codecs import registry as codec_registry
from softphone.codecs.dtmf import DTMF_EVENTS
from softphone.config import Config
from softphone.config.schema import CodecEntry
from softphone.devices import registry as device_registry
from softphone.errors import ConfigError, ParseError, SoftphoneError
from softphone.events import (
    CallSummary,
    Incoming,
    Listening,
    MediaNotice,
    PhoneEvent,
    RegistrationEvent,
    StateEvent,
    TransferEvent,
)
from softphone.frozen import dataclass
from softphone.phone import IncomingPolicy, Phone, incoming_policy
from softphone.session import CallSession

log = logging.getLogger(__name__)

Writer = Callable[[str], None]

_LIVE = frozenset({CallState.CALLING, CallState.EARLY, CallState.INCOMING, CallState.RINGING,
                   CallState.ANSWERED, CallState.CONFIRMED})


class ShellError(Exception):
    """A command the shell cannot carry out: printed as one line, the shell goes on."""


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    run: Callable[[list[str]], Awaitable[None] | None]


class Shell:
    """The commands of the console, each a method; ``execute`` runs one line."""

    def __init__(self, phone: Phone, write: Writer) -> None:
        self.phone = phone
        self.write = write
        self.numbers: dict[str, int] = {}  # Call-ID -> the number the user types
        self.uris: list[str] = []  # called or calling URIs, newest last: completion offers them
        self.finished = False
        self.commands = {c.name: c for c in self._commands()}

    # ------------------------------------------------------------ running lines

    async def execute(self, line: str) -> None:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self.write(f"error: {exc}")
            return
        if not words:
            return
        command = self.commands.get(words[0].lower())
        if command is None:
            self.write(f"error: unknown command {words[0]!r}; 'help' lists the commands")
            return
        try:
            result = command.run(words[1:])
            if result is not None:
                await result
        except ShellError as exc:
            self.write(f"error: {exc}")
        except (SoftphoneError, ParseError, ConfigError) as exc:
            self.write(f"error: {exc}")

    def on_event(self, event: PhoneEvent) -> None:
        """Phone events as notices: incoming calls with their number, states, call ends."""
        call_id = getattr(event, "call_id", None)
        number = self._number(call_id) if call_id is not None else None
        if isinstance(event, Incoming):
            self._remember(event.caller)
            auto = self.phone.policy is not None and self.phone.policy.auto_answer
            hint = "" if auto else f": 'answer {number}' or 'decline {number}'"
            self.write(f"call {number}: incoming call from {event.caller}{hint}")
        elif isinstance(event, StateEvent):
            if event.state not in (Progress.ENDED, Progress.TRYING, Progress.CALLING):  # `call` said it
                code = f" ({event.sip_code})" if event.sip_code else ""
                self.write(f"call {number}: {event.state.value}{code}")
        elif isinstance(event, CallSummary):
            self.write(f"call {number}: ended, {_summary_line(event)}")
        elif isinstance(event, MediaNotice):
            if event.name == "dtmf":
                self.write(f"call {number}: DTMF {event.data.get('digit', '')} received")
            elif event.name in ("nortp", "device_error"):
                self.write(f"call {number}: {event.name}: {event.data.get('reason', event.data)}")
        elif isinstance(event, TransferEvent):
            self.write(f"call {number}: {event.human()}")
        elif isinstance(event, RegistrationEvent):
            self.write(event.human())
        elif isinstance(event, Listening):
            pass  # `status` says it

    def _number(self, call_id: str) -> int:
        if call_id not in self.numbers:
            self.numbers[call_id] = len(self.numbers) + 1
        return self.numbers[call_id]

    def _remember(self, uri: str) -> None:
        if uri in self.uris:
            self.uris.remove(uri)
        self.uris.append(uri)

    # ------------------------------------------------------------ choosing a call

    def _live(self) -> list[tuple[int, CallSession]]:
        calls = [(self._number(cid), s) for cid, s in self.phone.sessions.items()
                 if not s.done.done() and s.state in _LIVE]
        return sorted(calls, key=lambda item: item[0])

    def _pick(self, args: Sequence[str], wanted: Callable[[CallSession], bool], what: str) -> CallSession:
        live = self._live()
        if args:
            try:
                number = int(args[0])
            except ValueError:
                raise ShellError(f"not a call number: {args[0]!r}; 'calls' lists them") from None
            for n, session in live:
                if n == number:
                    if not wanted(session):
                        raise ShellError(f"call {number} is {session.state.value}: cannot {what} it")
                    return session
            raise ShellError(f"no call {number}; 'calls' lists them")
        matching = [s for _, s in live if wanted(s)]
        if not matching:
            raise ShellError(f"no call to {what}")
        return matching[-1]

    @staticmethod
    def _ringing_in(session: CallSession) -> bool:
        return session.call.direction == Direction.INCOMING and session.state in (CallState.INCOMING,
                                                                                   CallState.RINGING)

    @staticmethod
    def _up(session: CallSession) -> bool:
        return session.state == CallState.CONFIRMED

    # ------------------------------------------------------------ the commands

    def _commands(self) -> list[Command]:
        return [
            Command("call", "call URI", "call a SIP URI (or a user of the default account)", self.do_call),
            Command("answer", "answer [ID]", "answer a ringing incoming call", self.do_answer),
            Command("decline", "decline [ID]", "decline a ringing incoming call (603 Decline)", self.do_decline),
            Command("terminate", "terminate [ID|all]", "hang up a call, or every call", self.do_terminate),
            Command("hold", "hold [ID]", "put a call on hold (the peer is sent sendonly)", self.do_hold),
            Command("resume", "resume [ID]", "take a call off hold", self.do_resume),
            Command("mute", "mute", "send silence instead of the microphone", self.do_mute),
            Command("unmute", "unmute", "send the microphone again", self.do_unmute),
            Command("dtmf", "dtmf DIGITS", "send DTMF digits (RFC 4733) in the current call", self.do_dtmf),
            Command("transfer", "transfer URI", "blind-transfer the current call to URI (REFER)", self.do_transfer),
            Command("calls", "calls", "list the calls", self.do_calls),
            Command("status", "status", "addresses, registrations, auto-answer", self.do_status),
            Command("register", "register", "register the config's accounts", self.do_register),
            Command("unregister", "unregister", "remove the registrations", self.do_unregister),
            Command("autoanswer", "autoanswer enable|disable", "answer incoming calls by themselves",
                    self.do_autoanswer),
            Command("soundcard", "soundcard list | use DEV | capture DEV | playback DEV",
                    "list sound devices, or choose them for the next calls", self.do_soundcard),
            Command("webcam", "webcam list | use DEV", "list cameras, or choose one for the next calls",
                    self.do_webcam),
            Command("codec", "codec list | enable NAME | disable NAME", "the codecs the next calls offer",
                    self.do_codec),
            Command("stats", "stats [ID]", "the media figures of a call", self.do_stats),
            Command("help", "help [COMMAND]", "this list, or one command's use", self.do_help),
            Command("quit", "quit", "hang up every call, unregister and leave", self.do_quit),
        ]

    async def do_call(self, args: list[str]) -> None:
        if len(args) != 1:
            raise ShellError("usage: call URI")
        session = await self.phone.call(args[0])
        self._remember(str(self.phone.target(args[0])))
        self.write(f"call {self._number(session.call_id)}: calling {self.phone.target(args[0])}")

    def do_answer(self, args: list[str]) -> None:
        session = self._pick(args, self._ringing_in, "answer")
        session.answer()

    def do_decline(self, args: list[str]) -> None:
        session = self._pick(args, self._ringing_in, "decline")
        session.reject(603)

    def do_terminate(self, args: list[str]) -> None:
        if args == ["all"]:
            live = self._live()
            if not live:
                raise ShellError("no call to terminate")
            for _, session in live:
                session.hangup()
            return
        self._pick(args, lambda s: True, "terminate").hangup()

    def do_hold(self, args: list[str]) -> None:
        self._pick(args, self._up, "hold").hold()

    def do_resume(self, args: list[str]) -> None:
        self._pick(args, self._up, "resume").resume()

    def do_mute(self, args: list[str]) -> None:
        self._set_muted(True)

    def do_unmute(self, args: list[str]) -> None:
        self._set_muted(False)

    def _set_muted(self, muted: bool) -> None:
        self.phone.muted = muted
        for _, session in self._live():
            session.set_muted(muted)
        self.write("microphone muted" if muted else "microphone on")

    def do_dtmf(self, args: list[str]) -> None:
        digits = "".join(args)
        if not digits or any(c.upper() not in DTMF_EVENTS for c in digits):
            raise ShellError(f"usage: dtmf DIGITS (from {DTMF_EVENTS})")
        self._pick([], self._up, "send DTMF in").send_dtmf(digits)

    def do_transfer(self, args: list[str]) -> None:
        if len(args) != 1:
            raise ShellError("usage: transfer URI")
        session = self._pick([], self._up, "transfer")
        target = self.phone.target(args[0])
        self._remember(str(target))
        session.transfer(str(target))

    def do_calls(self, args: list[str]) -> None:
        live = self._live()
        if not live:
            self.write("no calls")
            return
        now = time.monotonic()  # the phone's clock
        self.write(f"{'id':>3}  {'state':<10} {'direction':<9} {'duration':>8}  peer")
        for number, session in live:
            answered = session.timeline.get("answered")
            duration = _clock(now - session.record.started - answered) if answered is not None else "-"
            state = "on hold" if session.call.held else session.state.value
            self.write(f"{number:>3}  {state:<10} {session.call.direction.value:<9} {duration:>8}  "
                       f"{session.call.remote_party}")

    def do_status(self, args: list[str]) -> None:
        phone = self.phone
        ports = ", ".join(f"{t} {phone.bind}:{p}" for t, p in phone.ports().items())
        self.write(f"listening: {ports}")
        self.write(f"identity: {phone.identity.uri}")
        registrations = phone.agent.registrations.registrations
        if not registrations:
            self.write("registrations: none")
        for r in registrations:
            expires = f", expires in {r.granted} s" if r.registered and r.granted else ""
            self.write(f"registration: {r.aor.uri}: {r.state}{expires}")
        policy = phone.policy
        self.write(f"auto-answer: {'on' if policy is not None and policy.auto_answer else 'off'}")
        self.write(f"microphone: {'muted' if phone.muted else 'on'}")
        self.write(f"calls: {len(self._live())}")

    def do_register(self, args: list[str]) -> None:
        if not any(a.register for a in self.phone.accounts):
            raise ShellError("no account to register: add a [proxy_0] section (reg_proxy, reg_identity) to the config")
        live = [r for r in self.phone.agent.registrations.registrations
                if r.state not in ("unregistered", "failed", "idle")]
        if live:
            raise ShellError("already registered; 'unregister' first")
        self.phone.register()

    def do_unregister(self, args: list[str]) -> None:
        if not self.phone.unregister():
            raise ShellError("not registered")

    def do_autoanswer(self, args: list[str]) -> None:
        if args not in (["enable"], ["disable"]):
            raise ShellError("usage: autoanswer enable|disable")
        policy = self.phone.policy or IncomingPolicy()
        self.phone.policy = dataclasses.replace(policy, auto_answer=args[0] == "enable")
        self.write(f"auto-answer {'enabled' if args[0] == 'enable' else 'disabled'}")

    def do_soundcard(self, args: list[str]) -> None:
        if args == ["list"] or not args:
            from softphone.devices import list_audio_devices

            for device in list_audio_devices():
                kinds = "/".join(k for k, key in (("capture", "max_input_channels"),
                                                  ("playback", "max_output_channels")) if device.get(key))
                self.write(f"{device['index']:>3}: {device['name']} [{kinds}]")
            choice = self.phone.media_choice
            sound = self.phone.config.sound
            self.write(f"capture: {choice.audio_source or sound.capture_dev_id}; "
                       f"playback: {choice.audio_sink or sound.playback_dev_id}")
            return
        if len(args) < 2 or args[0] not in ("use", "capture", "playback"):
            raise ShellError("usage: soundcard list | use DEV | capture DEV | playback DEV")
        spec = _device_spec(args[1:], "pyaudio")
        choice = self.phone.media_choice
        if args[0] in ("use", "capture"):
            device_registry.resolve("audio_source", spec)
            choice.audio_source = spec
        if args[0] in ("use", "playback"):
            device_registry.resolve("audio_sink", spec)
            choice.audio_sink = spec
        sound = self.phone.config.sound
        self.write(f"next calls: capture {choice.audio_source or sound.capture_dev_id}, "
                   f"playback {choice.audio_sink or sound.playback_dev_id}")

    def do_webcam(self, args: list[str]) -> None:
        if args == ["list"] or not args:
            from softphone.devices import list_cameras

            for camera in list_cameras():
                self.write(f"{camera['spec']}  {camera['name']}")
            self.write("pattern:  a moving test pattern")
            current = self.phone.media_choice.video_source or self.phone.config.video.device
            self.write(f"in use: {current}")
            return
        if len(args) < 2 or args[0] != "use":
            raise ShellError("usage: webcam list | use DEV")
        spec = _device_spec(args[1:], "opencv")
        device_registry.resolve("video_source", spec)
        self.phone.media_choice.video_source = spec
        self.write(f"next calls film {spec}")

    def do_codec(self, args: list[str]) -> None:
        if args == ["list"] or not args:
            for kind in ("audio", "video"):
                for number, entry in enumerate(_codec_entries(self.phone.config, kind)):
                    mark = "enabled" if entry.enabled else "disabled"
                    self.write(f"{kind} {number:>2}: {entry.mime}/{entry.rate}  {mark}")
            return
        if len(args) != 2 or args[0] not in ("enable", "disable"):
            raise ShellError("usage: codec list | enable NAME | disable NAME")
        enabled = args[0] == "enable"
        for kind, field in (("audio", "audio_codecs"), ("video", "video_codecs")):
            entries = _codec_entries(self.phone.config, kind)
            hits = [i for i, e in enumerate(entries) if e.mime.lower() == args[1].split("/")[0].lower()]
            if hits:
                changed = tuple(dataclasses.replace(e, enabled=enabled) if i in hits else e
                                for i, e in enumerate(entries))
                if not any(e.enabled for e in changed if e.mime.lower() != "telephone-event"):
                    raise ShellError(f"{args[1]} is the last {kind} codec enabled")
                self.phone.config = self.phone.config.replace(**{field: changed})
                self.write(f"{kind} codec {entries[hits[0]].mime} {'enabled' if enabled else 'disabled'}")
                return
        names = codec_registry.names("audio") + codec_registry.names("video")
        raise ShellError(f"unknown codec {args[1]!r}; available: {', '.join(names)}")

    def do_stats(self, args: list[str]) -> None:
        session = self._pick(args, lambda s: True, "show")
        summary = session.summary()
        self.write(f"call {self._number(session.call_id)}: {session.state.value}, {session.call.remote_party}")
        for kind, stream in (("audio", summary.audio), ("video", summary.video)):
            if stream:
                self.write(f"  {kind}: {_stream_line(stream)}")
        sample = session.quality()
        if sample is not None:
            self.write(f"  last second: {sample.status_line()}")

    def do_help(self, args: list[str]) -> None:
        if args:
            command = self.commands.get(args[0].lower())
            if command is None:
                raise ShellError(f"unknown command {args[0]!r}")
            self.write(f"{command.usage}: {command.help}")
            return
        width = max(len(c.usage) for c in self.commands.values())
        for command in self.commands.values():
            self.write(f"  {command.usage:<{width}}  {command.help}")

    def do_quit(self, args: list[str]) -> None:
        self.finished = True


# ---------------------------------------------------------------- formatting


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _stream_line(stream: Any) -> str:
    parts = [str(stream.get("codec", "?"))]
    for key, label, unit in (("tx_packets", "sent", ""), ("rx_packets", "received", ""), ("lost", "lost", ""),
                             ("jitter_ms", "jitter", " ms"), ("rtt_ms", "rtt", " ms"), ("mos", "MOS", ""),
                             ("fps", "fps", ""), ("width", "width", "")):
        value = stream.get(key)
        if value is not None:
            parts.append(f"{label} {value:.1f}{unit}" if isinstance(value, float) else f"{label} {value}{unit}")
    return ", ".join(parts)


def _summary_line(summary: CallSummary) -> str:
    result = summary.result.value if summary.result is not None else "unknown"
    code = f" {summary.sip_code}" if summary.sip_code else ""
    duration = ""
    answered, bye = summary.timeline.get("answered"), summary.timeline.get("bye")
    if answered is not None and bye is not None:
        duration = f" after {_clock(bye - answered)}"
    return f"{result}{code}{duration}"


def _device_spec(words: Sequence[str], driver: str) -> str:
    """``3`` -> ``pyaudio: 3``; a full ``driver: device`` stays as written."""
    text = " ".join(words)
    return f"{driver}: {text}" if ":" not in text else text


def _codec_entries(config: Config, kind: str) -> tuple[CodecEntry, ...]:
    entries = config.audio_codecs if kind == "audio" else config.video_codecs
    if entries:
        return entries
    infos = [codec_registry.lookup(name, kind) for name in codec_registry.names(kind)]
    return tuple(CodecEntry(i.encoding, i.rtp_clock_rate, i.channels) for i in infos)


# ---------------------------------------------------------------- answering by hand


class AnswerQuestion:
    """``softphone answer`` on a terminal without ``--auto``: each incoming call rings and asks
    whether to answer it; ``y`` answers, anything else declines (603)."""

    def __init__(self, phone: Phone, write: Writer) -> None:
        self.phone = phone
        self.write = write
        self.waiting: list[tuple[str, str]] = []  # (Call-ID, caller) asked about, oldest first
        self._reading = False

    def start(self) -> None:
        asyncio.get_running_loop().add_reader(sys.stdin.fileno(), self._on_line)
        self._reading = True

    def stop(self) -> None:
        if self._reading:
            asyncio.get_running_loop().remove_reader(sys.stdin.fileno())
            self._reading = False

    def on_event(self, event: PhoneEvent) -> None:
        if isinstance(event, StateEvent) and event.state == Progress.RINGING:
            session = self.phone.sessions.get(event.call_id)
            if session is not None and session.call.direction == Direction.INCOMING:
                self.waiting.append((event.call_id, session.call.remote_party))
                if len(self.waiting) == 1:
                    self._ask()
        elif isinstance(event, CallSummary):
            asked = [i for i, (call_id, _) in enumerate(self.waiting) if call_id == event.call_id]
            if asked:
                del self.waiting[asked[0]]
                if asked[0] == 0 and self.waiting:
                    self._ask()

    def _ask(self) -> None:
        self.write(f"answer the call from {self.waiting[0][1]}? [y/n]")

    def _on_line(self) -> None:
        line = sys.stdin.readline()
        if not line:
            self.stop()  # end of input: calls ring on until they time out
            return
        if not self.waiting:
            return
        call_id, _ = self.waiting.pop(0)
        if line.strip().lower() in ("y", "yes"):
            self.phone.answer(call_id)
        else:
            self.phone.reject(call_id, 603)
        if self.waiting:
            self._ask()


# ---------------------------------------------------------------- the console


def history_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "softphone" / "history"


def _completer(shell: Shell) -> Any:
    from prompt_toolkit.completion import Completer, Completion

    class ShellCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterable[Any]:
            words = document.text_before_cursor.split()
            current = document.get_word_before_cursor(WORD=True)
            if len(words) == 0 or (len(words) == 1 and current):
                for name in shell.commands:
                    if name.startswith(current.lower()):
                        yield Completion(name, -len(current))
            elif words[0] in ("call", "transfer"):
                for uri in reversed(shell.uris):
                    if uri.startswith(current):
                        yield Completion(uri, -len(current))

    return ShellCompleter()


async def _read_terminal(shell: Shell) -> None:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    from prompt_toolkit.patch_stdout import patch_stdout

    path = history_path()
    history: Any
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        history = FileHistory(str(path))
        for line in history.load_history_strings():
            words = line.split()
            if len(words) == 2 and words[0] in ("call", "transfer"):
                shell.uris.insert(0, words[1])
    except OSError:
        history = InMemoryHistory()
    prompt: Any = PromptSession("softphone> ", history=history, completer=_completer(shell))
    with patch_stdout(raw=True):
        while not shell.finished:
            try:
                line = await prompt.prompt_async()
            except KeyboardInterrupt:
                continue  # Ctrl-C clears the line, as in a shell
            except EOFError:
                break
            await shell.execute(line)


async def _read_pipe(shell: Shell) -> None:
    loop = asyncio.get_running_loop()
    while not shell.finished:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        await shell.execute(line)


async def run_shell(config: Config, bind: str | None, write: Writer = print) -> int:
    """The console until ``quit`` or end of input; every call is hung up on the way out."""
    shell: Shell | None = None

    def on_event(event: PhoneEvent) -> None:
        if shell is not None:
            shell.on_event(event)

    phone = Phone(config, bind=bind, on_event=on_event)
    shell = Shell(phone, write)
    phone.policy = incoming_policy(config)
    await phone.start()
    if any(a.register for a in phone.accounts):
        phone.register()
    terminal = sys.stdin.isatty() and sys.stdout.isatty()
    if terminal:
        write("softphone shell: 'help' lists the commands, 'quit' leaves")
    try:
        await (_read_terminal(shell) if terminal else _read_pipe(shell))
    finally:
        await phone.close()
    return 0


__all__ = ["AnswerQuestion", "Shell", "ShellError", "history_path", "run_shell"]
