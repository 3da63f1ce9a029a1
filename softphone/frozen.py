"""``dataclass`` and ``cached_property`` for the package's values: frozen for the type checker,
cheap to build at run time.

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
    from functools import cached_property
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

    class cached_property:
        """``functools.cached_property`` without the lock that Python 3.11 takes at each first
        read (3.12 dropped it): a value computes the field once, and is never shared half-built."""

        def __init__(self, func: Any) -> None:
            self.func = func
            self.name = func.__name__
            self.__doc__ = func.__doc__

        def __set_name__(self, owner: type, name: str) -> None:
            self.name = name

        def __get__(self, instance: object, owner: type | None = None) -> Any:
            if instance is None:
                return self
            # a read finds the value in the instance's __dict__ from then on, before this descriptor
            value = instance.__dict__[self.name] = self.func(instance)
            return value


__all__ = ["cached_property", "dataclass"]
