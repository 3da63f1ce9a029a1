"""Every key documented in config/softphone.ini is named by a test that sets it and shows
its effect (or, for a key marked "Not supported yet", the warning it logs)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from softphone.config import NOT_SUPPORTED, SECTION_KEYS, loads
from softphone.errors import ConfigError

TESTS = Path(__file__).resolve().parent
REFERENCE = TESTS.parent / "config" / "softphone.ini"
# tests of the loader itself read every key without showing what it does
LOADER_TESTS = {"test_config.py", "test_config_keys.py"}


def documented_keys() -> list[tuple[str, str]]:
    """(section, key) for every key of the reference file, numbered sections as ``proxy_N``."""
    keys = []
    section = ""
    for line in REFERENCE.read_text().splitlines():
        if re.fullmatch(r"\[\w+\]", line):
            section = line[1:-1]
        elif re.fullmatch(r"\w+=.*", line):
            keys.append((section, line.split("=", 1)[0]))
    for section in SECTION_KEYS:
        if section.endswith("_N"):
            keys += [(section, key) for key in SECTION_KEYS[section]
                     if re.search(rf"^#\s+{key}=", REFERENCE.read_text(), re.MULTILINE)]
    return keys


def _test_sources() -> dict[str, str]:
    """``path::test_name`` -> the source of that test function, for every test module but the loader's."""
    found = {}
    for path in sorted(TESTS.rglob("test_*.py")):
        if path.name in LOADER_TESTS:
            continue
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                found[f"{path.relative_to(TESTS)}::{node.name}"] = ast.get_source_segment(text, node) or ""
    return found


SOURCES = _test_sources()

# Keys whose effect predates this guard and that no test names yet. The list may only
# shrink: a key named by a test must leave it, and no other key may join it.
AWAITING_TESTS: frozenset[tuple[str, str]] = frozenset()


def _named(key: str) -> list[str]:
    # a key written in config text follows a "\n" escape or a non-word character
    pattern = re.compile(rf"(?:(?<=\\n)|(?<!\w)){re.escape(key)}(?!\w)")
    return [name for name, source in SOURCES.items() if pattern.search(source)]


def test_the_reference_file_documents_keys() -> None:
    assert len(documented_keys()) > 60


@pytest.mark.parametrize(("section", "key"), documented_keys(), ids=lambda v: v)
def test_every_documented_key_is_named_by_a_test(section: str, key: str) -> None:
    if (section, key) in NOT_SUPPORTED:
        return  # its warning is shown below
    naming = _named(key)
    if (section, key) in AWAITING_TESTS:
        assert not naming, f"[{section}] {key} is named by {naming[0]}: remove it from AWAITING_TESTS"
        return
    assert naming, f"no test outside the loader's names [{section}] {key}: test its effect, or remove it"


@pytest.mark.parametrize(("section", "key"), sorted(NOT_SUPPORTED), ids=lambda v: v)
def test_a_key_not_supported_yet_warns_once_when_set(section: str, key: str) -> None:
    value = {"delayed_timeout": "8", "echocancellation": "1"}[key]
    config = loads(f"[{section}]\n{key}={value}\n", "n.rc")
    (warning,) = config.warnings
    assert warning.startswith(f"n.rc [{section}] {key}: ") and "not supported yet" in warning
    assert loads(f"[{section}]\n", "n.rc").warnings == ()  # the default is quiet
    assert "Not supported yet" in _comment_above(key)


def _comment_above(key: str) -> str:
    lines = REFERENCE.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(f"{key}="))
    comment = []
    for line in reversed(lines[:index]):
        if not line.startswith("#"):
            break
        comment.append(line)
    return " ".join(reversed(comment))


@pytest.mark.parametrize("value", ["4", "upnp"])
def test_firewall_policy_upnp_is_not_supported_yet(value: str) -> None:
    config = loads(f"[net]\nfirewall_policy={value}\n", "n.rc")
    (warning,) = config.warnings
    assert warning.startswith("n.rc [net] firewall_policy: ") and "not supported yet" in warning
    assert "not supported yet" in _comment_above("firewall_policy")


@pytest.mark.parametrize(("value", "policy"), [("0", 0), ("none", 0), ("1", 1), ("NAT_address", 1), ("3", 3),
                                             ("ICE", 3)])
def test_firewall_policy_by_number_or_name(value: str, policy: int) -> None:
    config = loads(f"[net]\nfirewall_policy={value}\nnat_address=192.0.2.7\n", "n.rc")
    assert config.net.firewall_policy == policy and config.warnings == ()


@pytest.mark.parametrize("value", ["2", "stun", "STUN"])
def test_firewall_policy_stun_takes_the_stun_server(value: str) -> None:
    config = loads(f"[net]\nfirewall_policy={value}\nstun_server=192.0.2.9\n", "n.rc")
    assert config.net.firewall_policy == 2 and config.net.stun_server == "192.0.2.9:3478"
    assert config.warnings == ()


@pytest.mark.parametrize(("text", "key"), [("firewall_policy=1\n", "nat_address"),
                                           ("firewall_policy=stun\n", "stun_server"),
                                           ("firewall_policy=1\nnat_address=192.0.2.7:5060\n", "nat_address"),
                                           ("firewall_policy=turn\n", "firewall_policy")])
def test_bad_nat_settings_name_file_section_and_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        loads("[net]\n" + text, "n.rc")
    assert str(caught.value).startswith(f"n.rc [net] {key}: ")


def test_stun_and_turn_servers_are_host_and_port() -> None:
    config = loads("[net]\nfirewall_policy=ice\nstun_server=stun.example.org\nturn_server=[2001:db8::1]:3479\n"
                   "turn_username=alice\nturn_password=s3cret\n", "n.rc")
    net = config.net
    assert (net.stun_server, net.turn_server) == ("stun.example.org:3478", "[2001:db8::1]:3479")
    assert (net.turn_username, net.turn_password) == ("alice", "s3cret")
    assert "s3cret" not in repr(net) and config.warnings == ()


@pytest.mark.parametrize(("text", "key"), [("stun_server=host:0\n", "stun_server"),
                                           ("turn_server=a b\n", "turn_server"),
                                           ("turn_server=192.0.2.1\n", "turn_username"),
                                           ("turn_server=192.0.2.1\nturn_username=u\n", "turn_password")])
def test_bad_stun_and_turn_settings_name_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        loads("[net]\n" + text, "n.rc")
    assert str(caught.value).startswith(f"n.rc [net] {key}: ")
