"""Servers' sampling requests answered by a model of the notebook's (`providers`).

The host only knows a `sample(request)` handler (`mcp_magic.host.client_requests`);
this module makes one that turns the request into a provider's conversation and the
provider's turn into the SDK's result.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..host.client_requests import (
    Declined,
    SamplingRequest,
    describe_part,
    message_parts,
)


def provider_messages(request: SamplingRequest) -> tuple[list[Any], list[Any]]:
    """The conversation and tools for a provider (`providers.base`): tool use
    by the assistant becomes its tool calls, tool results become tool messages."""
    from .providers.base import Message, ToolCall, ToolSpec

    if request.params is None:
        return [Message(role=role, content=text) for role, text in request.messages], []  # type: ignore[arg-type]
    messages: list[Any] = []
    for message in request.params.messages:
        parts = message_parts(message)
        text = "\n".join(
            describe_part(p) for p in parts if p.type not in ("tool_use", "tool_result")
        )
        calls = [ToolCall(p.id, p.name, json.dumps(p.input)) for p in parts if p.type == "tool_use"]
        for p in parts:
            if p.type == "tool_result":
                messages.append(Message(role="tool", tool_call_id=p.tool_use_id, content=" ".join(
                    describe_part(c) for c in p.content or []) or "(no output)"))
        if message.role == "assistant":
            messages.append(Message(role="assistant", content=text, tool_calls=calls))
        elif text:
            messages.append(Message(role="user", content=text))
    tools = [ToolSpec(t.name, t.description or "", t.input_schema or {"type": "object"})
             for t in request.params.tools or []]
    return messages, tools


def sampling_result(turn: Any, model: str) -> Any:
    """A provider's `Turn` as the SDK's result: text, or tool use when it asked for tools."""
    from mcp import types

    if turn.tool_calls:
        content: list[Any] = [types.TextContent(type="text", text=turn.text)] if turn.text else []
        for call in turn.tool_calls:
            try:
                arguments = json.loads(call.arguments or "{}")
            except ValueError:
                arguments = {"_raw": call.arguments}
            content.append(types.ToolUseContent(type="tool_use", id=call.id, name=call.name,
                                                input=arguments))
        return types.CreateMessageResultWithTools(
            role="assistant", content=content, model=model, stop_reason="toolUse")
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=turn.text),
        model=model,
        stop_reason="maxTokens" if turn.stop_reason in ("length", "max_tokens") else "endTurn",
    )


def model_sampler(model: Callable[[], Any], aliases: Callable[[], dict] | None = None
                  ) -> Callable[[SamplingRequest], Any]:
    """Answers sampling with a model from `providers`: `model()` names it when
    asked ("provider:model", e.g. the notebook's default model, or a resolved
    `ProviderConfig`); declined when there is none."""

    def check() -> Any:
        """The model's config, or Declined: asked before the user is asked to approve."""
        from .providers import ProviderError, resolve

        spec = model()
        if spec is not None and not isinstance(spec, str):
            return spec  # a resolved `ProviderConfig` (the notebook agent's)
        if not spec:
            raise Declined(
                "no model set up (%config McpMagics.default_model or MCP_MAGIC_MODEL)"
            )
        try:
            return resolve(spec, aliases=aliases() if aliases else None)
        except ProviderError as exc:
            raise Declined(f"the model {spec!r} cannot be used: {exc}") from None

    async def sample(request: SamplingRequest) -> Any:
        from .providers import make_provider
        from .providers.base import Request

        provider = make_provider(check())
        messages, tools = provider_messages(request)
        try:
            turn = await provider.complete(Request(
                messages=messages,
                tools=tools,
                system=request.system,
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                stream=False,
            ))
        finally:
            await provider.aclose()
        return sampling_result(turn, provider.model)

    sample.check = check  # type: ignore[attr-defined]
    return sample
