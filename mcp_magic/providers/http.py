"""HTTP for providers: one httpx2 client, retries with backoff, SSE streams.

Transient failures (429 honouring Retry-After, 5xx, "overloaded", connection resets,
timeouts) are retried with exponential backoff and a cap; anything else, or the last
failure, becomes a one-line `ProviderError` that never contains the API key.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx2

from .base import ProviderError

T = TypeVar("T")


@dataclass
class RetryPolicy:
    """mcphost's choice: start at 1 s, double, cap at 30 s, at most 5 retries."""

    retries: int = 5
    initial: float = 1.0
    cap: float = 30.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        base = min(self.cap, self.initial * (2**attempt))
        return base * (0.8 + 0.4 * random.random())


class TransientError(Exception):
    """A failure worth another try."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after_seconds(headers: httpx2.Headers) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        import time

        return parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


def error_message(body: bytes | str, status: int) -> str:
    """The provider's own words for an error body, on one line."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    message = None
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            message = error.get("message") or error.get("msg") or error.get("type")
        elif isinstance(error, str):
            message = error
        message = message or data.get("message")
    message = message or text.strip() or f"HTTP {status}"
    return " ".join(str(message).split())[:300]


def is_transient(status: int, message: str) -> bool:
    return status in (408, 429) or status >= 500 or "overloaded" in message.lower()


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    describe: str,
    on_retry: Callable[[str, float], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `attempt` until it succeeds, retrying `TransientError`s and network failures."""
    for number in range(policy.retries + 1):
        try:
            return await attempt()
        except (TransientError, httpx2.TransportError) as exc:
            retry_after = getattr(exc, "retry_after", None)
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, httpx2.TimeoutException):
                reason = "timed out"
            elif isinstance(exc, httpx2.TransportError):
                reason = f"connection failed ({type(exc).__name__})"
            if number == policy.retries:
                raise ProviderError(
                    f"{describe}: {reason} (gave up after {policy.retries + 1} attempts)"
                ) from None
            wait = policy.delay(number, retry_after)
            if on_retry is not None:
                on_retry(reason, wait)
            await sleep(wait)
    raise AssertionError("unreachable")


def make_client(timeout: float = 120.0) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(timeout=httpx2.Timeout(timeout, connect=15.0), follow_redirects=False)


async def check_response(response: httpx2.Response, describe: str) -> None:
    """Raise TransientError / ProviderError for a non-2xx response (reading its body)."""
    if response.status_code < 400:
        return
    body = await response.aread()
    message = error_message(body, response.status_code)
    if is_transient(response.status_code, message):
        raise TransientError(
            f"HTTP {response.status_code}: {message}", retry_after_seconds(response.headers)
        )
    hint = ""
    if response.status_code in (401, 403):
        hint = " (check the API key)"
    raise ProviderError(f"{describe}: HTTP {response.status_code}: {message}{hint}")


def sse_events(response: httpx2.Response) -> AsyncIterator[httpx2.ServerSentEvent]:
    """The server-sent events of a streaming response, as httpx2 parses them."""
    return aiter(httpx2.EventSource(response))


def parse_json(text: str, describe: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        # A malformed body is most often a proxy's error page or a cut connection.
        raise TransientError(f"malformed JSON from {describe}") from None


def is_event_stream(response: httpx2.Response) -> bool:
    content_type = response.headers.get("content-type", "")
    return content_type.split(";")[0].strip().lower() == "text/event-stream"


def scrub(text: str, secrets: list[str]) -> str:
    """Never let a key (echoed by a server in its error) reach the user."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


class HttpProvider:
    """What every wire format does the same way: one client, retries, stream or JSON.

    A subclass says where to POST (`path`), with which headers, how to build the body,
    and how to read a JSON reply (`parse`) or an SSE stream (`read_stream`).
    """

    path = ""

    def __init__(
        self,
        config: Any,
        *,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        timeout: float = 120.0,
        on_retry: Callable[[str, float], None] | None = None,
    ) -> None:
        self.config = config
        self.name = config.provider
        self.model = config.model
        self.retry_policy = retry_policy or RetryPolicy()
        self.timeout = timeout
        self.on_retry = on_retry
        self._sleep = sleep
        self._client: httpx2.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe}, {self.config.base_url})"

    @property
    def describe(self) -> str:
        return f"{self.name}:{self.model}"

    def build_body(self, request: Any) -> dict[str, Any]:
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        raise NotImplementedError

    def parse(self, data: Any) -> Any:
        raise NotImplementedError

    async def read_stream(self, response: httpx2.Response, on_text: Any) -> Any:
        raise NotImplementedError

    def secrets(self, request: Any) -> list[str]:
        return self.config.secrets()

    async def complete(self, request: Any, on_text: Any = None) -> Any:
        body = self.build_body(request)
        kwargs: dict[str, Any] = {"on_retry": self.on_retry}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        try:
            return await with_retries(
                lambda: self._attempt(body, on_text), self.retry_policy, self.describe, **kwargs
            )
        except ProviderError as exc:
            raise ProviderError(scrub(str(exc), self.secrets(request))) from None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _attempt(self, body: dict[str, Any], on_text: Any) -> Any:
        """One HTTP exchange; the stream is closed on return, error or cancellation."""
        if self._client is None:
            self._client = make_client(self.timeout)
        url = f"{self.config.base_url}{self.path}"
        async with self._client.stream("POST", url, json=body, headers=self.headers()) as resp:
            await check_response(resp, self.describe)
            if body.get("stream") and is_event_stream(resp):
                return await self.read_stream(resp, on_text)
            data = parse_json((await resp.aread()).decode("utf-8", "replace"), self.describe)
            turn = self.parse(data)
            if on_text is not None and turn.text:
                on_text(turn.text)  # not streamed (or a server ignored `stream`): all at once
            return turn
