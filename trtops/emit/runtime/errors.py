"""The loader's exceptions: what callers catch (load failures, input mismatches)."""

from __future__ import annotations


class LoaderError(Exception):
    """Base of every error this loader raises on purpose."""


class EngineLoadError(LoaderError, RuntimeError):
    """The engine cannot be loaded or run here."""


class EngineInputError(LoaderError, ValueError):
    """The inputs do not match the engine. ``name`` is the tensor concerned, if one."""

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


class UnknownInputError(EngineInputError):
    """A given name is not an input of the engine."""


class MissingInputError(EngineInputError):
    """An input of the engine was not given."""


class InputDTypeError(EngineInputError, TypeError):
    """An input has the wrong dtype."""


class InputShapeError(EngineInputError):
    """An input has the wrong rank or a wrong fixed dimension."""


class NoProfileError(InputShapeError):
    """The input shapes fit no optimization profile of the engine."""
