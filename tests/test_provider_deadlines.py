"""Every wait on a model has a bound, and every failure is one line naming its cause.

A real HTTP server on 127.0.0.1 plays each misbehaviour seen in the wild: a stream that
stalls after its first chunk, one that only drips SSE comments, one that never sends
`[DONE]` nor closes, a valid 10 MB line, a refused port, an HTML page. Idle limits are
short (0.5 s) so the suite stays fast; the assertions are about outcomes (the message,
how many requests the server saw), not timings.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
from fakes import anthropic_wire as aw
from fakes.openai_wire import PROCESSING, Call, chunk, raw_stream, stream_chunks, usage
from fakes.scripted_http import Reply, ScriptedServer

from mcp_magic.agent.providers import ProviderError, make_provider, resolve
from mcp_magic.agent.providers.base import Message, Request, Turn
from mcp_magic.agent.providers.http import RetryPolicy

KEY = "fake-deadline-test-key-0000"
IDLE = 0.5


@pytest.fixture(scope="module")
def shared_server():
    with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture
def server(shared_server):
    with shared_server._lock:
        shared_server.replies.clear()
        shared_server.requests.clear()
    return shared_server


@pytest.fixture(autouse=True)
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    for name in ("OLLAMA_BASE_URL", "OLLAMA_API_KEY", "OPENROUTER_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def provider(spec: str, base_url: str, waits: list[float] | None = None) -> Any:
    made = make_provider(resolve(spec, base_url=base_url))
    made.retry_policy = RetryPolicy(retries=5, initial=0.001, cap=0.01)

    async def record(seconds: float) -> None:
        if waits is not None:
            waits.append(seconds)

    if hasattr(made, "sleep"):
        made.sleep = record
    else:
        made._sleep = record
    return made


def openrouter(server: ScriptedServer, waits: list[float] | None = None) -> Any:
    return provider("openrouter:openai/gpt-4o-mini", server.url + "/api/v1", waits)


def ask(stream: bool = True, idle: float = IDLE) -> Request:
    return Request(messages=[Message("user", "hi")], stream=stream, idle_timeout=idle)


def run(model: Any, request: Request, deltas: list[str] | None = None) -> Turn:
    async def go() -> Turn:
        try:
            return await model.complete(request, deltas.append if deltas is not None else None)
        finally:
            await model.aclose()

    return asyncio.run(go())


def fail(model: Any, request: Request) -> str:
    with pytest.raises(ProviderError) as caught:
        run(model, request)
    message = str(caught.value)
    assert "\n" not in message and KEY not in message
    return message


# -- streams that never end by themselves ------------------------------------------------


def test_stall_after_the_role_chunk_ends_with_one_line(server):
    server.push(raw_stream([chunk({"role": "assistant", "content": ""})], done=False, hold=5))
    message = fail(openrouter(server), ask())
    assert message.startswith("openrouter: the stream stalled: no data for 0.5 s")
    assert len(server.requests) == 1  # the server took the request: asking again would stall


def test_comment_drip_does_not_keep_the_stream_alive(server):
    # A comment every 0.1 s: each read gets bytes, but no event ever arrives.
    drip = [PROCESSING] * 60
    server.push(raw_stream([chunk({"role": "assistant"}), *drip], done=False, delay=0.1))
    message = fail(openrouter(server), ask())
    assert "stalled: no data for 0.5 s" in message and "keep-alive" in message
    assert len(server.requests) == 1


def test_comments_between_chunks_are_fine_while_data_flows(server):
    items: list[Any] = []
    for item in stream_chunks("one two three", pieces=3):
        items += [PROCESSING, item]
    server.push(raw_stream(items, delay=0.05))
    assert run(openrouter(server), ask()).text == "one two three"


def test_finish_reason_ends_the_reply_without_done(server):
    # The server keeps the connection open after the finish chunk and never says [DONE].
    chunks = stream_chunks("All done.", usage_block=usage(7, 2))
    server.push(raw_stream(chunks, done=False, hold=5))
    turn = run(openrouter(server), ask())
    assert turn.text == "All done." and turn.stop_reason == "stop"
    assert turn.usage is not None and turn.usage.input_tokens == 7


def test_finish_reason_without_usage_ends_the_reply(server):
    server.push(raw_stream(stream_chunks("Short."), done=False, hold=5))
    turn = run(openrouter(server), ask())
    assert turn.text == "Short." and turn.usage is None


def test_tool_calls_end_with_their_finish_reason_too(server):
    calls = [Call("c1", "data__query_db", {"sql": "select 1"})]
    server.push(raw_stream(stream_chunks("", calls=calls), done=False, hold=5))
    turn = run(openrouter(server), ask())
    assert [c.name for c in turn.tool_calls] == ["data__query_db"]
    assert json.loads(turn.tool_calls[0].arguments) == {"sql": "select 1"}


def test_anthropic_stall_after_message_start(server):
    events = aw.stream_events([aw.text_block("never")])[:1]  # message_start, then nothing
    frames = [f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events]
    ping = 'event: ping\ndata: {"type": "ping"}\n\n'
    server.push(Reply(chunks=[*frames, *[ping] * 40], delay=0.1))
    model = provider("anthropic:claude-sonnet-4-5", server.url + "/v1")
    message = fail(model, ask())
    assert "stalled: no data for 0.5 s" in message  # pings are keep-alives, not data
    assert len(server.requests) == 1


# -- big answers ----------------------------------------------------------------------


def test_a_ten_megabyte_line_is_accepted(server):
    big = "x" * (10 * 1024 * 1024)
    items = [chunk({"role": "assistant", "content": ""}), chunk({"content": big})]
    items.append(chunk({}, "stop"))
    server.push(raw_stream(items))
    deltas: list[str] = []
    turn = run(openrouter(server), ask(), deltas)
    assert len(turn.text) == len(big) and deltas[0] == big
    assert len(server.requests) == 1


# -- endpoints that are not there, or not an API ----------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("stream", [True, False])
def test_refused_local_endpoint_fails_at_once_naming_url_and_what_to_start(stream):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    waits: list[float] = []
    message = fail(provider("ollama:qwen2.5", url, waits), ask(stream=stream))
    assert message == (
        f"ollama: connection to {url}/chat/completions refused: is `ollama serve` running?"
    )
    assert waits == []  # not retried


def test_refused_local_endpoint_of_another_wire(server):
    url = f"http://localhost:{closed_port()}/v1"
    message = fail(provider("anthropic:claude-sonnet-4-5", url), ask())
    assert f"connection to {url}/messages refused" in message
    assert "is the model server running there?" in message


@pytest.mark.parametrize("status", [200, 404])
def test_an_html_page_is_not_an_api_endpoint(server, status):
    page = "<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>"
    server.push(Reply(status=status, body=page, content_type="text/html; charset=utf-8"))
    message = fail(openrouter(server), ask())
    url = server.url + "/api/v1/chat/completions"
    assert message == (
        f"openrouter: {url} answered with an HTML page (HTTP {status}), "
        "not an API endpoint: check the base URL"
    )
    assert len(server.requests) == 1


def test_an_html_page_on_the_anthropic_wire(server):
    server.push(Reply(status=200, body="<html>login</html>", content_type="text/html"))
    model = provider("anthropic:claude-sonnet-4-5", server.url + "/v1")
    message = fail(model, ask(stream=False))
    assert "/v1/messages answered with an HTML page" in message
    assert len(server.requests) == 1


def test_an_html_error_page_from_a_proxy_is_retried(server):
    server.push(
        Reply(status=502, body="<html>Bad gateway</html>", content_type="text/html"),
        raw_stream(stream_chunks("back")),
    )
    assert run(openrouter(server), ask()).text == "back"
    assert len(server.requests) == 2


# -- "" for an assistant's content stays on the OpenAI wire ------------------------------


def test_empty_assistant_content_is_empty_string_only_on_the_openai_wire():
    from mcp_magic.agent.providers import anthropic, openai_chat, responses
    from mcp_magic.agent.providers.base import ToolCall

    calls = [ToolCall("c1", "data__query_db", '{"sql": "select 1"}')]
    request = Request(
        messages=[
            Message("user", "count"),
            Message("assistant", "", tool_calls=calls),
            Message("tool", "1", tool_call_id="c1", name="data__query_db"),
        ]
    )
    chat = openai_chat.build_body("m", request)["messages"][1]
    assert chat["content"] == "" and chat["tool_calls"][0]["id"] == "c1"
    claude = anthropic.build_body("m", request)["messages"][1]
    assert claude["content"] == [
        {"type": "tool_use", "id": "c1", "name": "data__query_db", "input": {"sql": "select 1"}}
    ]
    items = responses.build_body("m", request)["input"]
    assert [i.get("type", i.get("role")) for i in items] == [
        "user",
        "function_call",
        "function_call_output",
    ]
