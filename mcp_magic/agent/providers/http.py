"""HTTP for providers: one httpx2 client, retries with backoff, SSE streams.

Transient failures (429 honouring Retry-After, 5xx, "overloaded", connection resets,
timeouts before the reply starts) are retried with exponential backoff and a cap;
anything else, or the last failure, becomes a one-line `ProviderError` that never
contains the API key. Not transient, so failing at once: a refused connection to a
local endpoint (nothing is running there), an HTML page where an API should answer,
a reply we cannot parse (asking again gets the same bytes), and a stream that stalls
after it started.

Idle time: a stream must deliver an event with data at least every `idle` seconds.
SSE comments (`: keep-alive`, OpenRouter's `: OPENROUTER PROCESSING`) and other
keep-alives do not reset that clock: a server that only drips comments is as stuck as
one that sends nothing, and must not hold the cell forever.
"""

from __future__ import annotations

import asyncio
import errno
import json
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx2

from .base import ProviderError

T = TypeVar("T")

MAX_EVENT_BYTES = 64 * 1024 * 1024
"""The largest SSE event accepted. A single `data:` line of several MB is valid (a tool
call with a big argument, a long answer in one chunk); httpx2's default stops at 1 MB."""

DEFAULT_IDLE_TIMEOUT = 60.0
"""Seconds a stream may go without data before it counts as stalled."""

USAGE_GRACE = 1.0
"""After a choice's `finish_reason`, how long to wait for the usage chunk that usually
follows it (then the reply ends, `[DONE]` or not)."""


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
    url: str | None = None,
) -> T:
    """Run `attempt` until it succeeds, retrying `TransientError`s and network failures."""
    for number in range(policy.retries + 1):
        try:
            return await attempt()
        except (TransientError, httpx2.TransportError) as exc:
            retry_after = getattr(exc, "retry_after", None)
            reason = str(exc) or type(exc).__name__
            where = f" to {url}" if url else ""
            if isinstance(exc, httpx2.TimeoutException):
                reason = f"timed out waiting for {url}" if url else "timed out"
            elif isinstance(exc, httpx2.TransportError):
                reason = f"connection{where} failed ({type(exc).__name__})"
            if number == policy.retries:
                raise ProviderError(
                    f"{describe}: {reason} (gave up after {policy.retries + 1} attempts)"
                ) from None
            wait = policy.delay(number, retry_after)
            if on_retry is not None:
                on_retry(reason, wait)
            await sleep(wait)
    raise AssertionError("unreachable")


def make_client(timeout: float = DEFAULT_IDLE_TIMEOUT) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(timeout=httpx2.Timeout(timeout, connect=15.0), follow_redirects=False)


def request_timeout(idle: float, stream: bool, deadline: float | None) -> httpx2.Timeout:
    """Per-read limits for one request.

    Streaming: each read waits at most `idle`. Not streaming, the whole reply is one
    wait, as long as the model needs to write it: bounded by the run's deadline when
    there is one, else by `idle`.
    """
    read = idle
    if not stream and deadline is not None:
        import time

        read = max(idle, deadline - time.monotonic())
    return httpx2.Timeout(read, connect=min(15.0, max(idle, 1.0)))


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


async def sse_events(
    response: httpx2.Response,
    idle: float | None = None,
    describe: str = "the model",
    keepalive: Callable[[httpx2.ServerSentEvent], bool] | None = None,
) -> AsyncGenerator[httpx2.ServerSentEvent, None]:
    """The server-sent events of a streaming response that carry data.

    Events without data and those `keepalive` names are skipped and, like SSE comments,
    do not count as activity: with no real event for `idle` seconds the stream is
    stalled, a final `ProviderError` (the server already accepted the request, so a new
    one would most likely stall the same way, and repeat whatever it showed).
    """
    source = aiter(httpx2.EventSource(response, max_event_size=MAX_EVENT_BYTES))
    loop = asyncio.get_running_loop()
    active = loop.time()
    try:
        while True:
            wait = None if idle is None else max(0.0, active + idle - loop.time())
            try:
                event = await asyncio.wait_for(_next(source), wait)
            except StopAsyncIteration:
                return
            except (asyncio.TimeoutError, httpx2.ReadTimeout):
                raise ProviderError(stalled_message(describe, idle)) from None
            except httpx2.SSEError as exc:
                raise ProviderError(f"{describe}: unreadable event stream: {exc}") from None
            if not event.data.strip() or (keepalive is not None and keepalive(event)):
                continue
            active = loop.time()
            yield event
    finally:
        await source.aclose()  # type: ignore[attr-defined]


async def _next(source: AsyncIterator[T]) -> T:
    return await source.__anext__()


def stalled_message(describe: str, idle: float | None) -> str:
    return (
        f"{describe}: the stream stalled: no data for {idle or 0:g} s "
        "(keep-alive comments do not count; the idle limit is idle_timeout)"
    )


def parse_json(text: str, describe: str) -> Any:
    """JSON, or a final one-line error: the same request would get the same bytes."""
    try:
        return json.loads(text)
    except ValueError as exc:
        snippet = " ".join(text[:60].split())
        raise ProviderError(
            f"{describe}: could not parse the reply as JSON ({exc.msg} at character "
            f"{exc.pos}; it starts {snippet!r}); not retried"
        ) from None


def is_html(response: httpx2.Response) -> bool:
    content_type = response.headers.get("content-type", "")
    return content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml")


def html_error(response: httpx2.Response, url: str, describe: str) -> Exception:
    """A web page where the API should be: a wrong base URL (final) or a proxy's
    5xx error page (transient)."""
    status = response.status_code
    if status >= 500:
        return TransientError(f"HTTP {status}: an HTML error page from {url}")
    return ProviderError(
        f"{describe}: {url} answered with an HTML page (HTTP {status}), "
        "not an API endpoint: check the base URL"
    )


def is_refused(exc: BaseException) -> bool:
    """Whether a connect failure was a refusal (nothing listening), not a reset or DNS."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or (
            isinstance(current, OSError) and current.errno == errno.ECONNREFUSED
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def is_local(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


START_HINTS = {"ollama": "is `ollama serve` running?"}
"""What to start, per provider, when its local endpoint refuses the connection."""


def refused_error(url: str, provider: str, describe: str) -> ProviderError:
    """A local endpoint with nothing listening: retrying will not start it."""
    hint = START_HINTS.get(provider, "is the model server running there?")
    return ProviderError(f"{describe}: connection to {url} refused: {hint}")


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
    and how to read a JSON reply (`parse`) or an SSE stream (`read_stream`, which gets
    its events from `self.events(response)`).
    """

    path = ""

    def __init__(
        self,
        config: Any,
        *,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        timeout: float = DEFAULT_IDLE_TIMEOUT,
        on_retry: Callable[[str, float], None] | None = None,
    ) -> None:
        self.config = config
        self.name = config.provider
        self.model = config.model
        self.retry_policy = retry_policy or RetryPolicy()
        self.timeout = timeout  # idle limit when the request sets none
        self.on_retry = on_retry
        self.on_notice: Callable[[str], None] | None = None
        self._sleep = sleep
        self._client: httpx2.AsyncClient | None = None
        self._idle = timeout

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe}, {self.config.base_url})"

    @property
    def describe(self) -> str:
        return f"{self.name}:{self.model}"

    @property
    def url(self) -> str:
        return f"{self.config.base_url}{self.path}"

    def build_body(self, request: Any) -> dict[str, Any]:
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        raise NotImplementedError

    def parse(self, data: Any) -> Any:
        raise NotImplementedError

    async def read_stream(self, response: httpx2.Response, on_text: Any) -> Any:
        raise NotImplementedError

    def keepalive(self, event: httpx2.ServerSentEvent) -> bool:
        """Events that only say the connection is alive (they do not reset the idle clock)."""
        return event.event == "ping"

    def events(self, response: httpx2.Response) -> AsyncGenerator[httpx2.ServerSentEvent, None]:
        return sse_events(response, self._idle, self.describe, self.keepalive)

    def secrets(self, request: Any) -> list[str]:
        return self.config.secrets()

    async def complete(self, request: Any, on_text: Any = None) -> Any:
        body = self.build_body(request)
        idle = getattr(request, "idle_timeout", None) or self.timeout
        deadline = getattr(request, "deadline", None)
        kwargs: dict[str, Any] = {"on_retry": self.on_retry, "url": self.url}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        try:
            return await with_retries(
                lambda: self._attempt(body, on_text, idle, deadline),
                self.retry_policy,
                self.describe,
                **kwargs,
            )
        except ProviderError as exc:
            raise ProviderError(scrub(str(exc), self.secrets(request))) from None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _attempt(
        self, body: dict[str, Any], on_text: Any, idle: float, deadline: float | None = None
    ) -> Any:
        """One HTTP exchange; the stream is closed on return, error or cancellation."""
        if self._client is None:
            self._client = make_client(self.timeout)
        self._idle = idle
        url = self.url
        stream = bool(body.get("stream"))
        try:
            async with self._client.stream(
                "POST",
                url,
                json=body,
                headers=self.headers(),
                timeout=request_timeout(idle, stream, deadline),
            ) as resp:
                if is_html(resp):
                    raise html_error(resp, url, self.describe)
                await check_response(resp, self.describe)
                if stream and is_event_stream(resp):
                    return await self.read_stream(resp, on_text)
                try:
                    raw = await resp.aread()
                except httpx2.DecodingError:
                    raise ProviderError(f"{self.describe}: could not decode the reply") from None
                turn = self.parse(parse_json(raw.decode("utf-8", "replace"), self.describe))
                if on_text is not None and turn.text:
                    on_text(turn.text)  # not streamed (or a server ignored `stream`): all at once
                return turn
        except httpx2.ConnectError as exc:
            if is_refused(exc) and is_local(url):
                raise refused_error(url, self.name, self.describe) from None
            raise
