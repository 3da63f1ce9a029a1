"""``dataclass`` for the package's values: frozen for the type checker, cheap to build at run time.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, a call
through a slot wrapper with an argument tuple: a six-field value takes about four times as
long to build as the same class unfrozen. An INVITE's answer builds about eighty of them
(headers, URIs, SDP attributes and sections, the call's commands), and with this decorator it
takes about a fifth fewer instructions.

The type checker sees ``dataclasses.dataclass`` itself, so a ``@dataclass(frozen=True)``
class stays frozen where the package is checked (mypy strict): assigning a field is an
error there. At run time the same decorator builds the class unfrozen, with the equality and
the hash that frozen would have given it (the fields' hash, unless the class defines its
own ``__hash__`` or compares by identity). Nothing in the package assigns a field of a value
once it is built; code outside it should not either, and gets no error at run time if it does.
The config (``softphone.config``), built once at start and read by the user's code, keeps
``dataclasses``' frozen classes and their check.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dataclasses import dataclass
else:

    def dataclass(cls: type | None = None, /, **options: Any) -> Any:
        def build(cls: type) -> type:
            if not options.get("frozen"):
                return dataclasses.dataclass(cls, **options)
            plain = dict(options, frozen=False)
            if plain.get("eq", True) and "__hash__" not in cls.__dict__:
                plain["unsafe_hash"] = True  # what frozen=True with eq=True adds
            return dataclasses.dataclass(cls, **plain)

        return build if cls is None else build(cls)


__all__ = ["dataclass"]
