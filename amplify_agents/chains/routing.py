"""Routing between a local and a hosted model: a configurable switch, retries and fallback.

The switch is LangChain's ``configurable_alternatives`` on a :class:`ConfigurableField` with
id ``"llm"``: ``chain.with_config(configurable={"llm": "hosted"})`` picks the hosted route.
The hosted model is wrapped in ``with_retry`` (transient errors only: connection, timeout,
5xx, 429) and the hosted route in ``with_fallbacks([local_route])``, so the local model
answers when the hosted one keeps failing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from langchain_core.runnables import ConfigurableField, Runnable, RunnablePassthrough, RunnableSerializable

__all__ = [
    "LLM_FIELD",
    "LOCAL",
    "HOSTED",
    "RouteSettings",
    "default_retry_exceptions",
    "with_retries",
    "switchable",
]

LOCAL = "local"
HOSTED = "hosted"

LLM_FIELD = ConfigurableField(
    id="llm",
    name="LLM route",
    description='Which model answers: "local" (a model in this process) or "hosted" (an API).',
)
"""The configurable field that chooses a chain's route."""


@dataclass(frozen=True)
class RouteSettings:
    """How a chain picks its route, retries the hosted model and falls back.

    Attributes:
        default_route: the route without configuration (None: ``"local"`` when there is a
            local model, else ``"hosted"``). Switch with
            ``chain.with_config(configurable={"llm": "hosted"})``.
        hosted_attempts: ``with_retry(stop_after_attempt=...)`` on the hosted model, for
            connection errors, timeouts, 5xx and 429 (1: no retry).
        retry_on: the exception types to retry on (None: :func:`default_retry_exceptions`).
        retry_jitter: exponential back-off with jitter between attempts (off: no wait).
        fallback_to_local: when the hosted route still fails, the local route answers
            (``result.route == "local"``, ``result.fallback is True``).
    """

    default_route: Literal["local", "hosted"] | None = None
    hosted_attempts: int = 3
    retry_on: Sequence[type[BaseException]] | None = None
    retry_jitter: bool = True
    fallback_to_local: bool = True

    def __post_init__(self) -> None:
        if self.retry_on is not None:  # a list from the caller becomes a tuple: settings compare by value
            object.__setattr__(self, "retry_on", tuple(self.retry_on))

    def retrying(self, runnable: Runnable) -> Runnable:
        """``runnable`` with these settings' retries (see :func:`with_retries`)."""
        return with_retries(runnable, self.hosted_attempts, retry_on=self.retry_on, jitter=self.retry_jitter)


def default_retry_exceptions() -> tuple[type[BaseException], ...]:
    """The errors worth retrying: connection failures, timeouts, server errors, rate limits.

    A 400 or 401 is not retried: asking again cannot fix it.
    """
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import openai

        errors += [
            openai.APIConnectionError,
            openai.APITimeoutError,
            openai.InternalServerError,
            openai.RateLimitError,
        ]
    except ImportError:  # pragma: no cover - openai is a dependency
        pass
    return tuple(errors)


def with_retries(
    runnable: Runnable,
    attempts: int,
    *,
    retry_on: Sequence[type[BaseException]] | None = None,
    jitter: bool = True,
) -> Runnable:
    """``runnable.with_retry(stop_after_attempt=attempts)`` on transient errors (none if attempts <= 1)."""
    if attempts <= 1:
        return runnable
    return runnable.with_retry(
        stop_after_attempt=attempts,
        retry_if_exception_type=tuple(retry_on or default_retry_exceptions()),
        wait_exponential_jitter=jitter,
    )


def switchable(routes: Mapping[str, Runnable], default: str) -> RunnableSerializable:
    """One runnable whose route is chosen by ``configurable={"llm": <name>}``.

    Args:
        routes: route name -> runnable; every route takes and returns the same types.
        default: the route used when the configuration names none.
    """
    if default not in routes:
        raise ValueError(f"The default route {default!r} is not among the routes {sorted(routes)}.")
    first = routes[default]
    others = {name: route for name, route in routes.items() if name != default}
    if not isinstance(first, RunnableSerializable):  # configurable_alternatives lives there
        first = first | RunnablePassthrough()
    return first.configurable_alternatives(LLM_FIELD, default_key=default, **others)  # type: ignore[arg-type]
