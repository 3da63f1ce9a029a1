"""``softphone.frozen.dataclass``: the package's values are frozen for the type checker and
plain at run time, with the equality and hash that ``dataclasses``' frozen classes have."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from softphone import frozen

REPO = Path(__file__).resolve().parent.parent


def both(**options: object) -> tuple[type, type]:
    """The same class built by ``dataclasses`` and by ``softphone.frozen``."""

    def make(decorator: object) -> type:
        class Via:
            host: str
            port: int = 5060

        return decorator(**options)(Via)  # type: ignore[operator,no-any-return]

    return make(dataclasses.dataclass), make(frozen.dataclass)


def test_a_frozen_value_compares_and_hashes_as_dataclasses_frozen_one() -> None:
    reference, ours = both(frozen=True)
    assert hash(ours("a", 1)) == hash(reference("a", 1)) == hash(("a", 1))
    assert ours("a", 1) == ours("a", 1) and ours("a", 1) != ours("a", 2)
    assert len({ours("a", 1), ours("a", 1), ours("b", 1)}) == 2
    assert dataclasses.replace(ours("a", 1), port=2) == ours("a", 2)
    assert repr(ours("a", 1)) == repr(reference("a", 1))


def test_it_is_built_without_object_setattr() -> None:
    """The cost it saves: a frozen class's __init__ goes through object.__setattr__."""
    reference, ours = both(frozen=True)
    reference_init = reference.__init__.__code__  # type: ignore[misc]
    ours_init = ours.__init__.__code__  # type: ignore[misc]
    assert "__setattr__" in reference_init.co_names
    assert "__setattr__" not in ours_init.co_names


def test_an_own_hash_and_identity_equality_are_kept() -> None:
    def own_hash(decorator: object) -> object:
        class Token:
            text: str

            def __hash__(self) -> int:
                return 7

        return decorator(frozen=True)(Token)("x")  # type: ignore[operator]

    assert hash(own_hash(frozen.dataclass)) == hash(own_hash(dataclasses.dataclass)) == 7
    reference, ours = both(frozen=True, eq=False)
    value = ours("a", 1)
    assert value != ours("a", 1) and hash(value) == object.__hash__(value)


def test_a_mutable_dataclass_is_dataclasses_own() -> None:
    reference, ours = both()
    assert ours.__hash__ is None and reference.__hash__ is None
    value = ours("a", 1)
    value.port = 2
    assert value == ours("a", 2)


@pytest.mark.timeout(120)
def test_the_type_checker_rejects_assigning_a_field_of_a_package_value(tmp_path: Path) -> None:
    snippet = tmp_path / "assigns.py"
    snippet.write_text(
        "from softphone.sdp.model import Attribute\n"
        "from softphone.sip.uri import SipUri\n"
        "uri = SipUri.parse('sip:alice@10.0.0.2')\n"
        "uri.host = '10.0.0.3'\n"
        "Attribute('sendrecv').name = 'recvonly'\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--cache-dir", str(tmp_path / "cache"), str(snippet)],
        cwd=REPO, capture_output=True, text=True, timeout=110,
    )
    errors = [line for line in done.stdout.splitlines() if "error:" in line]
    assert len(errors) == 2, done.stdout + done.stderr
    assert all("read-only" in line for line in errors), errors


def test_a_cached_property_is_computed_once_per_value() -> None:
    calls: list[str] = []

    @frozen.dataclass(frozen=True)
    class Uri:
        host: str

        @frozen.cached_property
        def text(self) -> str:
            """The URI as text."""
            calls.append(self.host)
            return f"sip:{self.host}"

    first, second = Uri("a"), Uri("b")
    assert (first.text, first.text, second.text) == ("sip:a", "sip:a", "sip:b")
    assert calls == ["a", "b"]
    assert Uri.text.__doc__ == "The URI as text."  # type: ignore[attr-defined]
    assert first == Uri("a") and hash(first) == hash(Uri("a"))  # the cache is not a field
