"""Which provider a `provider:model` string means, and how to reach it.

Each provider names its wire format, its default base URL and the environment
variable holding its key. `<PROVIDER>_BASE_URL` (e.g. `OPENROUTER_BASE_URL`) points a
provider elsewhere, such as a local test endpoint; `--base-url` does the same per cell.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .base import Provider, ProviderError


@dataclass(frozen=True)
class ProviderInfo:
    wire: str  # "openai-chat" | "anthropic" | "responses"
    base_url: str
    key_env: str | None
    headers: dict[str, str] = field(default_factory=dict)
    max_hosted_servers: int | None = None
    hosted_transports: tuple[str, ...] = ("http", "sse")


PROVIDERS: dict[str, ProviderInfo] = {
    "openrouter": ProviderInfo(
        "openai-chat",
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
        headers={"HTTP-Referer": "https://github.com/mcp-magic/mcp-magic", "X-Title": "mcp_magic"},
    ),
    "openai": ProviderInfo("openai-chat", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    "openai-responses": ProviderInfo("responses", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    "ollama": ProviderInfo("openai-chat", "http://localhost:11434/v1", None),
    "gemini": ProviderInfo(
        "openai-chat",
        "https://generativelanguage.googleapis.com/v1beta/openai",
        "GEMINI_API_KEY",
    ),
    "dashscope": ProviderInfo(
        "openai-chat",
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "DASHSCOPE_API_KEY",
    ),
    "dashscope-responses": ProviderInfo(
        "responses",
        "https://dashscope-intl.aliyuncs.com/api/v2/apps/protocols/compatible-mode/v1",
        "DASHSCOPE_API_KEY",
        max_hosted_servers=10,
        hosted_transports=("sse",),
    ),
    "anthropic": ProviderInfo("anthropic", "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY"),
}
"""Known providers. Any other name works with a base URL (an OpenAI-compatible server)."""


@dataclass(frozen=True)
class ProviderConfig:
    """Everything needed to build a provider; the key stays out of the repr."""

    provider: str
    model: str
    info: ProviderInfo
    base_url: str
    api_key: str | None = field(default=None, repr=False)

    def secrets(self) -> list[str]:
        return [self.api_key] if self.api_key else []


def split_model(spec: str) -> tuple[str, str]:
    """`openrouter:openai/gpt-4` → ("openrouter", "openai/gpt-4"); split at the first colon."""
    provider, sep, model = spec.strip().partition(":")
    if not sep or not provider or not model:
        raise ProviderError(
            f"model {spec!r} must be provider:model, e.g. openrouter:openai/gpt-4o-mini"
        )
    return provider.lower(), model


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (export prefixes, quotes and comments allowed)."""
    values: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return values
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def lookup_env(name: str, cwd: Path | None = None) -> str | None:
    """From the environment, else from a `.env` file in the working directory."""
    value = os.environ.get(name)
    if value:
        return value
    return read_dotenv((cwd or Path.cwd()) / ".env").get(name) or None


def resolve(
    spec: str,
    base_url: str | None = None,
    aliases: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> ProviderConfig:
    """Work out provider, endpoint and key for a model string, or say what is missing."""
    provider, model = split_model(spec)
    info = PROVIDERS.get(provider)
    alias_url = (aliases or {}).get(provider)
    if info is None:
        url = base_url or alias_url or lookup_env(f"{env_name(provider)}_BASE_URL", cwd)
        if not url:
            known = ", ".join(PROVIDERS)
            raise ProviderError(
                f"unknown provider {provider!r}: use one of {known}, "
                "or give --base-url for an OpenAI-compatible endpoint"
            )
        info = ProviderInfo("openai-chat", url, None)
    url = (
        base_url or alias_url or lookup_env(f"{env_name(provider)}_BASE_URL", cwd) or info.base_url
    )
    key = None
    if info.key_env:
        key = lookup_env(info.key_env, cwd)
        if key is None:
            raise ProviderError(
                f"{info.key_env} is not set: export it or add it to a .env file "
                f"to use {provider}:{model}"
            )
    else:
        key = lookup_env(f"{env_name(provider)}_API_KEY", cwd)
    return ProviderConfig(provider, model, info, url.rstrip("/"), key)


MODEL_ENV = "MCP_MAGIC_MODEL"


def default_model(cwd: Path | None = None) -> str | None:
    """The model to use when none is given: `MCP_MAGIC_MODEL` (environment or `.env`)."""
    value = lookup_env(MODEL_ENV, cwd)
    return value.strip() if value and value.strip() else None


def env_name(provider: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in provider).upper()


def make_provider(config: ProviderConfig) -> Provider:
    """Build the wire-format implementation for a resolved config."""
    if config.info.wire == "anthropic":
        from .anthropic import AnthropicProvider

        return AnthropicProvider(config)
    if config.info.wire == "responses":
        from .responses import ResponsesProvider

        return ResponsesProvider(config)
    from .openai_chat import OpenAIChatProvider

    return OpenAIChatProvider(config)


__all__ = [
    "PROVIDERS",
    "ProviderConfig",
    "ProviderError",
    "default_model",
    "make_provider",
    "resolve",
]
