"""Exceptions raised by amplify-agents.

Every error says what is wrong and how to fix it; all derive from
:class:`AmplifyError` so callers can catch the library's errors in one place.
"""

from __future__ import annotations

__all__ = [
    "AmplifyError",
    "ModelNotAvailableError",
    "ModelCacheError",
    "TaskFormatError",
    "LabelError",
    "ExplanationError",
    "StoreError",
    "StoreConnectionError",
    "EndpointError",
    "InputTooLongError",
    "FileEncodingError",
    "ContextLengthError",
]


class AmplifyError(Exception):
    """Base class of the library's errors."""


class ModelNotAvailableError(AmplifyError):
    """A model could not be found: not a local path, not an offline name, no hub."""


class ModelCacheError(AmplifyError):
    """A cached converted model is unreadable; the message names what to delete."""


class TaskFormatError(AmplifyError, ValueError):
    """A task file or record is malformed; ``problems`` lists them with row numbers."""

    def __init__(self, message: str, problems: list | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class LabelError(AmplifyError, ValueError):
    """A label is not in the label space it must belong to."""


class ExplanationError(AmplifyError, ValueError):
    """An explanation could not be computed or is degenerate (NaN, all zero)."""


class StoreError(AmplifyError):
    """The rationale store rejected an operation; nothing was written."""


class StoreConnectionError(StoreError, ConnectionError):
    """A Chroma server store did not answer in time or refused the connection; the message
    names its host and port, how long was waited, and what to check."""


class EndpointError(AmplifyError):
    """A model endpoint cannot be used: nothing answers at its URL, its API key variable is
    unset, or it does not serve the model asked for. The message names which, and the fix."""


class InputTooLongError(AmplifyError, ValueError):
    """A text is longer than its limit (see :class:`~amplify_agents.limits.TextLimits`); the
    message names the field, where it came from, its length and the limit."""


class FileEncodingError(AmplifyError, ValueError):
    """A file is not valid UTF-8; the message names the file, the line and the byte."""


class ContextLengthError(InputTooLongError, ExplanationError):
    """A prompt has more tokens than the model's context; raised before any forward pass.
    ``tokens`` and ``context`` hold the two counts; the message says what to shorten."""

    def __init__(self, message: str, tokens: int = 0, context: int = 0) -> None:
        super().__init__(message)
        self.tokens = tokens
        self.context = context
