"""`ConfigField`: a module attribute that is a field of its frozen config, so forward, repr and save agree.

A grukit module keeps its settings in a frozen dataclass `config` (what `grukit.save`
writes). A user may still write `gru.batch_first = True`, as with torch.nn.GRU; the
attribute then must not drift from the config. `ConfigField(check)` reads
`module.config.<name>` and, on assignment, checks the value and replaces the config;
`ConfigField()` (no check) is fixed at construction, because it shapes the weights.

Example:
    >>> from dataclasses import dataclass
    >>> from grukit._config_field import ConfigField
    >>> @dataclass(frozen=True)
    ... class C:
    ...     size: int
    ...     flag: bool = False
    >>> class M:
    ...     size, flag = ConfigField(), ConfigField(bool)
    ...     def __init__(self):
    ...         self.config = C(3)
    >>> m = M(); m.flag = 1
    >>> m.flag, m.config
    (True, C(size=3, flag=True))
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable


class ConfigField:
    """Reads `obj.config.<name>`; assignment sets it through `check(value)`, or raises if the field is fixed."""

    def __init__(self, check: Callable[[Any], Any] | None = None):
        self.check = check

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else getattr(obj.config, self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        if self.check is None:
            raise AttributeError(f"{self.name}: fixed when the module is built (it shapes the weights), got an "
                                 f"assignment of {value!r}; build a new module instead")
        obj.config = replace(obj.config, **{self.name: self.check(value)})
