"""Classes named in payloads ("module:qualname"): found again among modules already imported, never importing.

The security seam of the codec, kept apart so it can be read on its own: decoding never imports a module and
never unpickles, so a payload can only name a class that the application has already loaded, of the kind
its tag says (an enum, a dataclass, a named tuple, a pydantic model). Encoding checks once per class that
its name finds it again, so a class defined inside a function fails when the task is added, not when it is
read back.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from .._exceptions import PayloadError

# Class -> "module:qualname", for the classes whose name was checked to find them again.
_found_again: dict[type, str] = {}


def resolve(ref: str) -> Any:
    """Find an already-imported class by "module:qualname"; never imports anything."""
    module_name, _, qualname = ref.partition(":")
    module = sys.modules.get(module_name)
    if module is None or not qualname:
        raise PayloadError(
            f"stored arguments name the class {ref!r}, whose module is not imported; import it before "
            "the task runs, or register the type with taskflow.register_type()"
        )
    obj: Any = module
    for part in qualname.split("."):
        # vars(), not getattr(): a module-level __getattr__ may import lazily, and descriptors may run code.
        obj = vars(obj).get(part) if hasattr(obj, "__dict__") else None
        if obj is None:
            raise PayloadError(f"stored arguments name the class {ref!r}, which does not exist")
    return obj


def findable_ref(cls: type) -> str | None:
    """`cls` as "module:qualname", or None when that name does not find it again (defined in a function,
    or shadowed)."""
    ref = _found_again.get(cls)
    if ref is None:
        ref = f"{cls.__module__}:{cls.__qualname__}"
        try:
            found = resolve(ref)
        except PayloadError:
            found = None
        if found is not cls:
            return None
        _found_again[cls] = ref
    return ref


def named_class(node: dict[str, Any], check: Callable[[type], bool], kind: str) -> Any:
    """The class a tagged node names in "c", if it is a class that passes `check` (else `PayloadError`)."""
    cls = resolve(node["c"])
    if not isinstance(cls, type) or not check(cls):
        raise PayloadError(f"stored arguments name {node['c']!r} as {kind}, but it is not one")
    return cls


def is_namedtuple(cls: type) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


def is_model(cls: type) -> bool:  # pydantic v2, by duck typing: pydantic itself is never imported
    return hasattr(cls, "model_dump") and hasattr(cls, "model_validate")
