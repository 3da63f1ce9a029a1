"""Tests of the linphonerc-style configuration loader."""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import pytest

from softphone.config import (
    SECTION_KEYS,
    AuthInfo,
    CodecEntry,
    Config,
    ProxyConfig,
    SipConfig,
    default_config,
    default_config_path,
    dumps,
    load,
    loads,
    parse_port_range,
    parse_size,
)
from softphone.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "config" / "softphone.ini"
EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.ini"))

ACCOUNT = """
[proxy_0]
reg_proxy=<sip:sip.example.org;transport=udp>
reg_identity="Alice" <sip:alice@example.org>
"""


def error_of(text: str, path: str = "test.rc") -> str:
    with pytest.raises(ConfigError) as info:
        loads(text, path)
    return str(info.value)


# ---------------------------------------------------------------- line syntax


def test_empty_text_gives_the_defaults() -> None:
    config = loads("", None)
    assert config == default_config()
    assert config.path is None


def test_path_is_recorded() -> None:
    assert loads("", "my.rc").path == "my.rc"


def test_whitespace_around_equals_and_value_is_trimmed() -> None:
    config = loads("  [sip]  \n   sip_port   =   5070   \n\tuser_agent =\t my agent 1.0 \t\n")
    assert config.sip.sip_port == 5070
    assert config.sip.user_agent == "my agent 1.0"


def test_whole_line_comments_and_blank_lines_are_ignored() -> None:
    text = "# first\n\n[sip]\n   # sip_port=1\n\n\t#sip_port=2\nsip_port=5070\n# sip_port=3\n"
    assert loads(text).sip.sip_port == 5070


def test_hash_later_in_a_line_is_part_of_the_value() -> None:
    config = loads("[sip]\nuser_agent=phone #1 ; yes\n[sound]\ncapture_dev_id=file: take#2.wav\n")
    assert config.sip.user_agent == "phone #1 ; yes"
    assert config.sound.capture_dev_id == "file: take#2.wav"


def test_hash_after_a_number_makes_it_invalid() -> None:
    message = error_of("[sip]\nsip_port=5070 # the port\n")
    assert "expected an integer -1..65535, got '5070 # the port'" in message


def test_later_duplicate_key_overrides_earlier() -> None:
    assert loads("[sip]\nsip_port=5070\nsip_port=5080\n").sip.sip_port == 5080


def test_reopened_section_merges_and_overrides() -> None:
    config = loads("[sip]\nsip_port=5070\nipv6=1\n[rtp]\n[sip]\nsip_port=5080\n")
    assert (config.sip.sip_port, config.sip.ipv6) == (5080, True)


def test_empty_value_means_default() -> None:
    config = loads("[sip]\nsip_port=5070\nsip_port=\ncontact=\n")
    assert config.sip.sip_port == 5060
    assert config.sip.contact == SipConfig().contact


def test_quotes_are_kept_raw() -> None:
    config = loads('[sip]\nuser_agent="quoted"\ncontact="Alice" <sip:alice@host>\n')
    assert config.sip.user_agent == '"quoted"'
    assert config.sip.contact == '"Alice" <sip:alice@host>'


def test_equals_in_value_is_kept() -> None:
    text = "[video_codec_0]\nmime=H264\nrecv_fmtp=profile-level-id=42e01f;packetization-mode=1\n"
    assert loads(text).video_codecs[0].recv_fmtp == "profile-level-id=42e01f;packetization-mode=1"


def test_crlf_and_byte_order_mark_are_accepted() -> None:
    assert loads("\ufeff[sip]\r\nsip_port=5070\r\n").sip.sip_port == 5070


def test_garbage_line_names_file_section_and_line() -> None:
    message = error_of("[sip]\nsip_port=5070\nthis is not a setting\n")
    assert message.startswith("test.rc [sip]: line 3:")
    assert "'this is not a setting'" in message


@pytest.mark.parametrize("line", ["[]", "[two words]", "[sip", "=5060", "sip port=5060"])
def test_malformed_lines_are_errors(line: str) -> None:
    message = error_of(f"{line}\n")
    assert message.startswith("test.rc: line 1:")
    assert repr(line) in message


def test_garbage_line_error_has_no_key() -> None:
    with pytest.raises(ConfigError) as info:
        loads("[rtp]\nnonsense\n", "x.rc")
    assert (info.value.path, info.value.section, info.value.key) == ("x.rc", "rtp", None)


def test_key_outside_any_section_warns() -> None:
    config = loads("sip_port=5070\n[sip]\n")
    assert config.sip.sip_port == 5060
    assert len(config.warnings) == 1
    assert "sip_port" in config.warnings[0] and "outside any section" in config.warnings[0]


# ---------------------------------------------------------------- value types


@pytest.mark.parametrize(
    ("text", "value"), [("5070", 5070), ("0x13c4", 5060), ("0X13C4", 5060), ("0", 0), ("+5070", 5070)]
)
def test_integers_accept_decimal_and_hex(text: str, value: int) -> None:
    assert loads(f"[sip]\nsip_port={text}\n").sip.sip_port == value


def test_leading_zero_is_decimal_not_octal() -> None:
    assert loads("[sip]\nsip_port=010\n").sip.sip_port == 10


@pytest.mark.parametrize("text", ["1", "true", "TRUE", "Yes", "on", "ON"])
def test_true_booleans(text: str) -> None:
    assert loads(f"[sip]\nauto_answer={text}\n").sip.auto_answer is True


@pytest.mark.parametrize("text", ["0", "false", "False", "no", "NO", "off"])
def test_false_booleans(text: str) -> None:
    assert loads(f"[rtp]\nsymmetric={text}\n").rtp.symmetric is False


def test_bad_boolean_names_file_section_and_key() -> None:
    message = error_of("[sip]\nauto_answer=2\n")
    assert message.startswith("test.rc [sip] auto_answer: expected a boolean")
    assert "got '2'" in message


@pytest.mark.parametrize(
    ("text", "value"),
    [("7078", (7078, 7078)), ("10000-20000", (10000, 20000)), (" 10000 - 20000 ", (10000, 20000)), ("0", (0, 0))],
)
def test_port_ranges(text: str, value: tuple[int, int]) -> None:
    assert parse_port_range(text) == value


def test_port_range_in_file() -> None:
    config = loads("[rtp]\naudio_rtp_port=10000-20000\nvideo_rtp_port=0x2000\n")
    assert config.rtp.audio_rtp_port == (10000, 20000)
    assert config.rtp.video_rtp_port == (8192, 8192)


@pytest.mark.parametrize("text", ["20000-10000", "-1", "70000", "1-70000", "a-b", "10000-", "0-100"])
def test_bad_port_ranges(text: str) -> None:
    message = error_of(f"[rtp]\naudio_rtp_port={text}\n")
    assert message.startswith("test.rc [rtp] audio_rtp_port: expected a port 0..65535 or a range")
    assert repr(text.strip()) in message


def test_sip_port_zero_means_any_port() -> None:
    assert loads("[sip]\nsip_port=0\n").sip.sip_port == 0


def test_ports_accept_minus_one_for_any_free_port_like_linphone() -> None:
    config = loads("[sip]\nsip_port=-1\nsip_tcp_port=-1\nsip_tls_port=-1\n")
    assert (config.sip.sip_port, config.sip.sip_tcp_port, config.sip.sip_tls_port) == (-1, -1, -1)
    assert "expected an integer -1..65535, got '-2'" in error_of("[sip]\nsip_port=-2\n")


def test_bad_integer_message_names_file_section_key_and_line() -> None:
    message = error_of("[sip]\n\nsip_port=abc\n")
    assert message == "test.rc [sip] sip_port: expected an integer -1..65535, got 'abc' (line 3)"


def test_config_error_attributes() -> None:
    with pytest.raises(ConfigError) as info:
        loads("[rtp]\nnortp_timeout=-5\n", "a.rc")
    assert (info.value.path, info.value.section, info.value.key) == ("a.rc", "rtp", "nortp_timeout")
    assert "expected an integer >= 0, got '-5'" in info.value.message
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "size"),
    [("vga", (640, 480)), ("VGA", (640, 480)), ("qcif", (176, 144)), ("cif", (352, 288)),
     ("qvga", (320, 240)), ("720p", (1280, 720)), ("1080p", (1920, 1080)), ("800x600", (800, 600)),
     ("1024 x 768", (1024, 768))],
)
def test_video_sizes(text: str, size: tuple[int, int]) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["huge", "640x", "0x0", "640*480", "99999x10"])
def test_bad_video_size(text: str) -> None:
    message = error_of(f"[video]\nsize={text}\n")
    assert message.startswith("test.rc [video] size: expected a video size")


def test_size_in_file() -> None:
    assert loads("[video]\nsize=720p\n").video.size == (1280, 720)


def test_floats() -> None:
    config = loads("[sound]\nplayback_gain_db=-6.5\nmic_gain_db=3\n[video]\nframerate=15\n")
    assert config.sound.playback_gain_db == -6.5
    assert config.sound.mic_gain_db == 3.0
    assert config.video.framerate == 15.0
    assert isinstance(config.video.framerate, float)


@pytest.mark.parametrize("text", ["fast", "nan", "inf", "0", "1000"])
def test_bad_framerate(text: str) -> None:
    assert error_of(f"[video]\nframerate={text}\n").startswith("test.rc [video] framerate: expected a number 1..240")


def test_millisecond_keys_map_to_ms_fields() -> None:
    text = "[sip]\nT1=250\nT2=2000\nT4=3000\nauto_answer_delay=1500\nkeepalive_period=10000\n"
    sip = loads(text).sip
    assert (sip.t1_ms, sip.t2_ms, sip.t4_ms) == (250, 2000, 3000)
    assert sip.auto_answer_delay_ms == 1500
    assert sip.keepalive_period_ms == 10000


def test_t2_below_t1_is_an_error() -> None:
    assert "T2: expected T2 >= T1 (500 ms), got 100" in error_of("[sip]\nT2=100\n")


def test_user_agent_default_has_the_version() -> None:
    assert default_config().sip.user_agent == "softphone"


@pytest.mark.parametrize(
    "text",
    ["sip:alice@host", "sips:alice@host:5061", '"Alice" <sip:alice@host>', "Alice <sip:alice@host>",
     "<sip:alice@host;transport=tcp>", '"A \\"B\\"" <SIP:alice@host>'],
)
def test_sip_addresses(text: str) -> None:
    assert loads(f"[sip]\ncontact={text}\n").sip.contact == text


@pytest.mark.parametrize("text", ["alice@host", "tel:+123", "sip:", "<sip:alice@host", "Alice sip:alice@host"])
def test_bad_sip_addresses(text: str) -> None:
    message = error_of(f"[sip]\ncontact={text}\n")
    assert message.startswith("test.rc [sip] contact: expected a SIP address")


@pytest.mark.parametrize("text", ["pyaudio: default", "tone: 440", "file: in.wav", "null:", "opencv: 0"])
def test_device_names(text: str) -> None:
    assert loads(f"[sound]\ncapture_dev_id={text}\n").sound.capture_dev_id == text


def test_device_without_driver_is_an_error() -> None:
    message = error_of("[sound]\nplayback_dev_id=default\n")
    assert message.startswith("test.rc [sound] playback_dev_id: expected 'driver: device'")


def test_log_level_is_case_insensitive_and_checked() -> None:
    assert loads("[misc]\nlog_level=DEBUG\n").misc.log_level == "debug"
    assert "expected one of debug, info, warning, error, critical, got 'loud'" in error_of(
        "[misc]\nlog_level=loud\n"
    )


def test_event_loop_is_one_of_three_names() -> None:
    assert loads("").misc.event_loop == "auto"
    assert loads("[misc]\nevent_loop=UVLOOP\n").misc.event_loop == "uvloop"
    assert error_of("[misc]\nevent_loop=trio\n").startswith(
        "test.rc [misc] event_loop: expected one of auto, asyncio, uvloop, got 'trio'"
    )


def test_ptime_range() -> None:
    assert loads("[sound]\nptime=40\n").sound.ptime == 40
    assert "expected an integer 10..120, got '5'" in error_of("[sound]\nptime=5\n")


# ---------------------------------------------------------------- unknown names


def test_unknown_key_warns_and_is_collected(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="softphone.config"):
        config = loads("[sip]\nsip_port=5070\nsip_prot=5080\n", "w.rc")
    assert config.sip.sip_port == 5070
    assert config.warnings == ("w.rc: ignored unknown keys: [sip] sip_prot",)
    assert [r.getMessage() for r in caplog.records] == ["w.rc: ignored unknown keys: [sip] sip_prot"]


def test_unknown_section_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="softphone.config"):
        config = loads("[GtkUi]\nx=1\n[app]\n", "w.rc")
    assert config.warnings == ("w.rc: ignored unknown keys: [GtkUi] (whole section); [app] (whole section)",)
    assert len(caplog.records) == 1


def test_keys_are_case_sensitive() -> None:
    config = loads("[sip]\nt1=100\n")
    assert config.sip.t1_ms == 500
    assert config.warnings == ("<string>: ignored unknown keys: [sip] t1",)


def test_bad_value_under_unknown_key_is_not_an_error() -> None:
    assert loads("[sip]\nfuture_port=abc\n").sip == SipConfig()


# ---------------------------------------------------------------- numbered sections


def test_proxy_and_auth_info() -> None:
    text = ACCOUNT + (
        "reg_route=<sip:edge.example.org;lr>\nreg_expires=600\nreg_sendregister=0\n"
        "reg_instance_id=<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\n"
        "[auth_info_0]\nusername=alice\nuserid=alice-id\npasswd=s3cret\nrealm=example.org\n"
        "domain=example.org\nalgorithm=sha-256\n"
    )
    config = loads(text)
    assert config.proxies == (
        ProxyConfig(
            index=0,
            reg_proxy="<sip:sip.example.org;transport=udp>",
            reg_identity='"Alice" <sip:alice@example.org>',
            reg_route="<sip:edge.example.org;lr>",
            reg_expires=600,
            reg_sendregister=False,
            reg_instance_id="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>",
        ),
    )
    assert config.auth_infos == (
        AuthInfo(0, "alice", "alice-id", "s3cret", None, "example.org", "example.org", "SHA-256"),
    )
    assert config.default_proxy_config == config.proxies[0]
    assert config.warnings == ()


def test_proxy_optional_keys_default() -> None:
    proxy = loads(ACCOUNT).proxies[0]
    assert (proxy.reg_route, proxy.reg_expires, proxy.reg_sendregister, proxy.reg_instance_id) == (
        None,
        3600,
        True,
        None,
    )


def test_numbered_sections_in_index_order() -> None:
    text = (
        "[proxy_1]\nreg_proxy=sip:two.example.org\nreg_identity=sip:b@two.example.org\n"
        + ACCOUNT
        + "[proxy_2]\nreg_proxy=sip:three.example.org\nreg_identity=sip:c@three.example.org\n"
    )
    proxies = loads(text).proxies
    assert [p.index for p in proxies] == [0, 1, 2]
    assert [p.reg_proxy for p in proxies] == [
        "<sip:sip.example.org;transport=udp>",
        "sip:two.example.org",
        "sip:three.example.org",
    ]


def test_numbering_stops_at_the_first_gap(caplog: pytest.LogCaptureFixture) -> None:
    text = ACCOUNT + "[proxy_5]\nreg_proxy=sip:far.example.org\nreg_identity=sip:x@far.example.org\n"
    with caplog.at_level(logging.WARNING, logger="softphone.config"):
        config = loads(text, "g.rc")
    assert len(config.proxies) == 1
    assert config.warnings == (
        "g.rc [proxy_5]: unused section: numbering stops at the first missing index ([proxy_1])",
    )
    assert "proxy_5" in caplog.text


def test_nothing_is_read_without_index_zero() -> None:
    config = loads("[auth_info_1]\nusername=bob\n[audio_codec_1]\nmime=PCMU\nrate=8000\n")
    assert config.auth_infos == ()
    assert config.audio_codecs == ()
    assert len(config.warnings) == 2
    assert all("unused section" in w for w in config.warnings)


def test_missing_required_proxy_key() -> None:
    message = error_of("[proxy_0]\nreg_proxy=sip:example.org\n")
    assert message == "test.rc [proxy_0] reg_identity: missing: every [proxy_N] needs reg_identity"


def test_missing_username() -> None:
    assert error_of("[auth_info_0]\npasswd=x\n").startswith("test.rc [auth_info_0] username: missing")


def test_bad_proxy_value_names_numbered_section() -> None:
    message = error_of(ACCOUNT + "reg_expires=soon\n")
    assert message.startswith("test.rc [proxy_0] reg_expires: expected an integer >= 1, got 'soon'")


def test_unknown_key_in_numbered_section_warns() -> None:
    config = loads(ACCOUNT + "quality_reporting_enabled=1\n", "p.rc")
    assert config.warnings == ("p.rc: ignored unknown keys: [proxy_0] quality_reporting_enabled",)


def test_bad_algorithm() -> None:
    message = error_of("[auth_info_0]\nusername=a\nalgorithm=SHA-1\n")
    assert message.startswith("test.rc [auth_info_0] algorithm: expected one of MD5, SHA-256")


def test_default_proxy_must_name_an_existing_proxy() -> None:
    message = error_of("[sip]\ndefault_proxy=1\n" + ACCOUNT)
    assert message.startswith("test.rc [sip] default_proxy: expected -1 or a [proxy_N] index 0..0, got 1")


def test_default_proxy_minus_one_means_direct() -> None:
    config = loads("[sip]\ndefault_proxy=-1\n" + ACCOUNT)
    assert config.default_proxy_config is None
    assert len(config.proxies) == 1


def test_default_proxy_without_proxies() -> None:
    assert default_config().default_proxy_config is None


def test_codecs() -> None:
    text = (
        "[audio_codec_0]\nmime=opus\nrate=48000\nchannels=2\nrecv_fmtp=useinbandfec=1\n"
        "[audio_codec_1]\nmime=PCMU\nrate=8000\nenabled=0\n"
        "[video_codec_0]\nmime=VP8\n"
        "[video_codec_1]\nmime=H264\nrate=90000\nenabled=off\n"
    )
    config = loads(text)
    assert config.audio_codecs == (
        CodecEntry("opus", 48000, 2, True, "useinbandfec=1"),
        CodecEntry("PCMU", 8000, 1, False, None),
    )
    assert config.video_codecs == (
        CodecEntry("VP8", 90000, 1, True, None),
        CodecEntry("H264", 90000, 1, False, None),
    )


def test_audio_codec_needs_a_rate() -> None:
    assert error_of("[audio_codec_0]\nmime=PCMU\n") == (
        "test.rc [audio_codec_0] rate: missing: every [audio_codec_N] needs rate"
    )


def test_channels_is_not_a_video_codec_key() -> None:
    config = loads("[video_codec_0]\nmime=VP8\nchannels=2\n", "v.rc")
    assert config.warnings == ("v.rc: ignored unknown keys: [video_codec_0] channels",)


# ---------------------------------------------------------------- passwords


def test_passwords_are_not_in_repr() -> None:
    config = loads(ACCOUNT + "[auth_info_0]\nusername=alice\npasswd=hunter2-secret\nha1=0123abcdef\n")
    for text in (repr(config), str(config), repr(config.auth_infos[0]), str(config.auth_infos[0])):
        assert "hunter2-secret" not in text
        assert "0123abcdef" not in text
        assert "username='alice'" in text
    assert "passwd='***'" in repr(config.auth_infos[0])
    assert config.auth_infos[0].passwd == "hunter2-secret"


def test_unset_password_shows_none() -> None:
    assert "passwd=None" in repr(AuthInfo(0, "alice"))


# ---------------------------------------------------------------- files


def test_reference_file_equals_the_defaults() -> None:
    config = load(REFERENCE)
    assert config.warnings == ()
    assert config.path == str(REFERENCE)
    assert config.replace(path=None) == default_config()


def _reference_keys() -> list[tuple[str, str]]:
    pairs = []
    section = ""
    for line in REFERENCE.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and not line.startswith("#"):
            pairs.append((section, line.split("=", 1)[0]))
    return pairs


def test_reference_file_sets_every_plain_key_with_a_comment_above() -> None:
    plain = {(name, key) for name, keys in SECTION_KEYS.items() if not name.endswith("_N") for key in keys}
    assert sorted(_reference_keys()) == sorted(plain)
    lines = REFERENCE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            assert lines[number - 1].startswith("# "), f"no comment above {line!r}"


def test_reference_file_documents_numbered_section_keys() -> None:
    text = REFERENCE.read_text()
    numbered = {key for name, keys in SECTION_KEYS.items() if name.endswith("_N") for key in keys}
    assert len(numbered) == 18
    for key in numbered:
        assert re.search(rf"^#\s+{key}=", text, re.MULTILINE), key


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_load_without_warnings(path: Path) -> None:
    config = load(path)
    assert config.warnings == ()
    assert config != default_config().replace(path=config.path)


def test_there_are_three_examples() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"intercom.ini", "registered.ini", "video.ini"} <= names


def test_intercom_example_auto_answers() -> None:
    config = load(ROOT / "config" / "examples" / "intercom.ini")
    assert config.sip.auto_answer and config.sip.auto_answer_delay_ms > 0
    assert not config.video.enabled


def test_registered_example_has_an_account() -> None:
    config = load(ROOT / "config" / "examples" / "registered.ini")
    assert len(config.proxies) == 1 and len(config.auth_infos) == 1
    assert config.default_proxy_config is config.proxies[0]


def test_video_example_sends_video() -> None:
    config = load(ROOT / "config" / "examples" / "video.ini")
    assert config.video.enabled and config.video.size == (1280, 720)
    assert [c.mime for c in config.video_codecs] == ["VP8", "H264"]


def test_load_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.rc"
    with pytest.raises(ConfigError) as info:
        load(missing)
    assert str(info.value) == f"{missing}: cannot read: No such file or directory"
    assert (info.value.section, info.value.key) == (None, None)


def test_load_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path)


def test_load_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.rc"
    path.write_bytes(b"[sip]\nuser_agent=caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(path)


def test_load_reads_str_path(tmp_path: Path) -> None:
    path = tmp_path / "a.rc"
    path.write_text("[sip]\nsip_port=5090\n")
    config = load(str(path))
    assert config.sip.sip_port == 5090
    assert config.path == str(path)


def test_error_from_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.rc"
    path.write_text("[net]\nmtu=big\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value).startswith(f"{path} [net] mtu: expected an integer 200..65535, got 'big'")


# ---------------------------------------------------------------- default path


def test_default_path_from_environment(tmp_path: Path) -> None:
    assert default_config_path({"SOFTPHONE_CONFIG": "/etc/x.rc", "HOME": str(tmp_path)}) == "/etc/x.rc"


def test_default_path_in_home_when_it_exists(tmp_path: Path) -> None:
    assert default_config_path({"HOME": str(tmp_path)}) is None
    rc = tmp_path / ".config" / "softphone" / "softphonerc"
    rc.parent.mkdir(parents=True)
    rc.write_text("")
    assert default_config_path({"HOME": str(tmp_path)}) == str(rc)


def test_default_path_follows_xdg_config_home(tmp_path: Path) -> None:
    rc = tmp_path / "xdg" / "softphone" / "softphonerc"
    rc.parent.mkdir(parents=True)
    rc.write_text("")
    assert default_config_path({"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}) == str(rc)


# ---------------------------------------------------------------- overrides and round trip


def test_with_values_parses_strings_and_checks_types() -> None:
    config = default_config().with_values("sip", sip_port=5070, T1="0x100", auto_answer=True)
    assert (config.sip.sip_port, config.sip.t1_ms, config.sip.auto_answer) == (5070, 256, True)
    assert default_config().sip.sip_port == 5060


def test_with_values_accepts_field_and_file_names() -> None:
    config = default_config().with_values("sip", auto_answer_delay_ms=100).with_values("sip", T4=7000)
    assert (config.sip.auto_answer_delay_ms, config.sip.t4_ms) == (100, 7000)


def test_with_values_tuples_and_floats() -> None:
    config = default_config().with_values("rtp", audio_rtp_port=(10000, 10010)).with_values("video", framerate=25)
    assert config.rtp.audio_rtp_port == (10000, 10010)
    assert config.video.framerate == 25.0


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("sip", {"sip_port": 70000}, "[sip] sip_port: expected an integer -1..65535, got '70000'"),
        ("sip", {"sip_port": "x"}, "[sip] sip_port: expected an integer -1..65535, got 'x'"),
        ("sip", {"sip_port": True}, "[sip] sip_port: expected int, got True"),
        ("sip", {"auto_answer": 1}, "[sip] auto_answer: expected bool, got 1"),
        ("sip", {"no_such": 1}, "[sip] no_such: unknown key"),
        ("rtp", {"audio_rtp_port": (20000, 10000)}, "[rtp] audio_rtp_port: expected a port"),
        ("nope", {"x": 1}, "[nope]: unknown section"),
    ],
)
def test_with_values_rejects(section: str, values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        default_config().with_values(section, **values)
    assert str(info.value).startswith(message)


def test_with_values_empty_string_restores_default() -> None:
    config = default_config().with_values("sip", bind_address="10.0.0.1").with_values("sip", bind_address="")
    assert config.sip.bind_address == ""


def test_replace_whole_sections() -> None:
    sip = dataclasses.replace(SipConfig(), sip_port=5099)
    config = default_config().replace(sip=sip)
    assert config.sip.sip_port == 5099
    assert isinstance(config, Config)


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        default_config().sip.sip_port = 1  # type: ignore[misc]


@pytest.mark.parametrize("path", [REFERENCE, *EXAMPLES], ids=lambda p: p.name)
def test_dumps_round_trips(path: Path) -> None:
    config = load(path)
    again = loads(dumps(config), config.path)
    assert again == config


def test_dumps_writes_single_ports_and_sizes_plainly() -> None:
    text = dumps(default_config().with_values("rtp", video_rtp_port="9000-9100"))
    assert "\naudio_rtp_port=7078\n" in text
    assert "\nvideo_rtp_port=9000-9100\n" in text
    assert "\nsize=640x480\n" in text


def test_semicolon_does_not_start_a_comment() -> None:
    assert error_of("[sip]\n; sip_port=1\n").startswith("test.rc [sip]: line 2:")
