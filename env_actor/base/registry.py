"""A generic name -> class registry with optional base-class or Protocol enforcement."""
from typing import Callable, Generic, Iterator, Optional, TypeVar

T = TypeVar('T')


class UnknownRegistryKeyError(KeyError):
    """A name that is not registered; the message lists the registered names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


def protocol_methods(protocol: type) -> list[str]:
    """Return the public method names a Protocol class declares."""
    return sorted(name for name, value in vars(protocol).items()
                  if callable(value) and not name.startswith('_'))


class Registry(Generic[T]):
    """Maps names to classes (or factories).

    Args:
        name: what the registry holds, used in error messages (e.g. 'policy').
        base: optional class or `typing.Protocol` that every registered object must
            subclass or satisfy; checked at registration time.
    """

    def __init__(self, name: str, base: Optional[type] = None) -> None:
        self.name = name
        self.base = base
        self._entries: dict[str, T] = {}

    def register(self, name: str, obj: Optional[T] = None, *,
                 override: bool = False) -> Callable[[T], T] | T:
        """Register `obj` under `name`; without `obj`, return a decorator.

        Raises:
            ValueError: empty name, duplicate name (unless override), or an object that
                does not satisfy the registry's base class / protocol.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f'{self.name} registry: name must be a non-empty string, '
                             f'got {name!r}')

        def add(target: T) -> T:
            self._check(name, target)
            if name in self._entries and not override and self._entries[name] is not target:
                raise ValueError(
                    f'{self.name} registry: {name!r} is already registered to '
                    f'{_qualname(self._entries[name])}; cannot register {_qualname(target)}')
            self._entries[name] = target
            return target

        return add if obj is None else add(obj)

    def _check(self, name: str, obj: T) -> None:
        if self.base is None:
            return
        if getattr(self.base, '_is_protocol', False):
            missing = [m for m in protocol_methods(self.base)
                       if not callable(getattr(obj, m, None))]
            if missing:
                raise ValueError(
                    f'{self.name} registry: {_qualname(obj)} (registering {name!r}) does not '
                    f'satisfy {self.base.__name__}: missing method(s) {", ".join(missing)}')
            return
        if not (isinstance(obj, type) and issubclass(obj, self.base)):
            raise ValueError(f'{self.name} registry: {_qualname(obj)} (registering {name!r}) '
                             f'is not a subclass of {_qualname(self.base)}')

    def get(self, name: str) -> T:
        """Return what `name` maps to.

        Raises:
            UnknownRegistryKeyError: `name` is not registered (lists the registered names).
        """
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownRegistryKeyError(
                f'unknown {self.name} {name!r}; registered: {self.names() or "(none)"}'
            ) from None

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        return sorted(self._entries)

    def unregister(self, name: str) -> None:
        """Remove `name` (used by tests and plugin reloads); missing names are ignored."""
        self._entries.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def _qualname(obj: object) -> str:
    module = getattr(obj, '__module__', '?')
    return f'{module}.{getattr(obj, "__qualname__", repr(obj))}'
