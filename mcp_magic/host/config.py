"""Server specs: what `%mcp connect` and `mcpServers` files describe.

Specs keep secrets (header values, env values) out of their reprs, and keep
`$VAR` references unexpanded until the moment of connecting, so what a notebook
stores or prints never holds the secret itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from .auth import OAuthSettings

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_VAR_PATTERN = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class ConfigError(ValueError):
    """Bad connect arguments or a bad `mcpServers` file (a one-line message)."""


def _hidden(mapping: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{key!r}: '***'" for key in mapping) + "}"


@dataclass(frozen=True)
class StdioSpec:
    """A server started as a child process and spoken to over stdin/stdout."""

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    cwd: str | None = None
    label: str | None = None
    roots: tuple[str, ...] | None = None
    """Directories offered to this server as roots (an `mcpServers` "roots" list); None:
    the host's setting (`McpMagics.roots`)."""

    transport: Literal["stdio"] = "stdio"

    def __repr__(self) -> str:
        return (
            f"StdioSpec(command={self.command!r}, args={self.args!r}, "
            f"env={_hidden(self.env)}, cwd={self.cwd!r})"
        )

    @property
    def target(self) -> str:
        return self.label or " ".join([Path(self.command).name, *self.args])

    def secrets(self) -> list[str]:
        return _secret_values(self.env.values())


@dataclass(frozen=True)
class HttpSpec:
    """A remote server over streamable HTTP or SSE."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    transport: Literal["http", "sse"] = "http"
    oauth: OAuthSettings | None = None
    """Pre-registered client / client credentials / scopes; OAuth itself needs none."""
    roots: tuple[str, ...] | None = None
    """Directories offered to this server as roots (an `mcpServers` "roots" list); None:
    the host's setting (`McpMagics.roots`)."""

    def __repr__(self) -> str:
        return (
            f"HttpSpec(url={self.target!r}, headers={_hidden(self.headers)}, "
            f"transport={self.transport!r})"
        )

    @property
    def target(self) -> str:
        """The URL without user info, which may hold a password."""
        return _without_user_info(self.url)

    def secrets(self) -> list[str]:
        values = list(self.headers.values())
        values += self.oauth.secrets() if self.oauth else []
        _, user_info, _ = _split_user_info(self.url)
        if ":" in user_info:  # user:password@
            values.append(user_info.split(":", 1)[1].removesuffix("@"))
        return _secret_values(values)


ServerSpec = StdioSpec | HttpSpec


_AUTH_SCHEMES = {"bearer", "basic", "digest", "token"}  # words, not secrets


def _secret_values(templates) -> list[str]:
    """Every value a template may expand to: worth redacting wherever it shows up."""
    values: set[str] = set()
    for template in templates:
        for candidate in (template, expand_vars(template, strict=False)):
            values.add(candidate)
            # "Bearer abc": the credential alone may show up too.
            values.update(
                part for part in candidate.split()
                if len(part) >= 6 and part.lower() not in _AUTH_SCHEMES
            )
    return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)


INHERITED_ENV = (
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
    "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ",
    "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
)  # fmt: skip
INHERITED_ENV_PREFIXES = ("UV_", "PIP_", "NPM_CONFIG_", "npm_config_")


def inherited_environment() -> dict[str, str]:
    """What a stdio server gets from the kernel besides the SDK's PATH/HOME/USER basics.

    Proxies, certificates, locale and package-tool settings, so `uvx` and `npx` work
    behind a corporate proxy; not the whole environment, which may hold API keys.
    """
    return {
        key: value
        for key, value in os.environ.items()
        if key in INHERITED_ENV or key.startswith(INHERITED_ENV_PREFIXES)
    }


def expand_vars(text: str, *, strict: bool = True) -> str:
    """Expand `$VAR`, `${VAR}` and `${env:VAR}` from the kernel's environment.

    With `strict`, a variable that is not set is an error naming it (never its value).
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        value = os.environ.get(name)
        if value is None:
            if strict:
                raise ConfigError(f"environment variable {name} is not set")
            return match.group(0)
        return value

    return _VAR_PATTERN.sub(replace, text)


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ConfigError(
            f"invalid server name {name!r}: use letters, digits, '_' or '-', starting with a letter"
        )
    return name


def parse_header(text: str) -> tuple[str, str]:
    key, sep, value = text.partition(":")
    if not sep or not key.strip() or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", key.strip()):
        raise ConfigError(f"invalid header {key.strip() or text!r}: expected 'Name: value'")
    if any(ord(char) < 32 and char != "\t" for char in value):
        raise ConfigError(f"invalid header {key.strip()!r}: its value has a control character")
    return key.strip(), value.strip()


def parse_env(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise ConfigError(f"invalid --env {key or text!r}: expected KEY=VALUE")
    return key, value


_HOST_CHARACTERS = re.compile(r"^[^\s<>\"{}|\\^`%\[\]]+$")


def _split_user_info(url: str) -> tuple[str, str, str]:
    """(`scheme://`, `user:password@`, rest), for URLs malformed in any way too."""
    scheme, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        scheme, sep, rest = "", "", url
    ends = [i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0]
    at = rest.rfind("@", 0, min(ends, default=len(rest)))
    return scheme + sep, rest[: at + 1], rest[at + 1 :]


def _without_user_info(url: str) -> str:
    """The URL for messages: `user:password@` dropped, whatever else is wrong with it."""
    scheme, _, rest = _split_user_info(url)
    # Whatever else looks like `user:password@` goes too (malformed URLs split oddly).
    return re.sub(r"[^@/\s]*:[^@/\s]*@", "", scheme + rest)


def check_url(url: str) -> str:
    """An http(s) URL with a host and a valid port, or a ConfigError naming what is wrong."""
    shown = _without_user_info(url.strip())

    def bad(why: str) -> ConfigError:
        return ConfigError(f"invalid URL {shown!r}: {why}")

    if any(ord(char) < 32 or ord(char) == 127 for char in url):
        raise bad("it contains a control character")
    if "://" not in url:
        raise bad("expected http://host[:port]/path or https://...")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        if url.count("[") != url.count("]"):
            raise bad(
                "unbalanced brackets around the host (IPv6 looks like http://[::1]:8000/mcp)"
            ) from None
        raise bad(str(exc).replace("does not appear to be", "is not")) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise bad(f"the scheme must be http or https, not {parts.scheme!r}")
    netloc = parts.netloc.rpartition("@")[2]
    if not parts.hostname:
        raise bad("it has no host")
    if not netloc.startswith("["):
        host, _, port_text = netloc.partition(":")
        if ":" in port_text:
            raise bad(f"too many ':' in {netloc!r} (an IPv6 host goes in brackets: http://[::1]/mcp)")
        if not _HOST_CHARACTERS.match(host):
            raise bad(f"the host {host!r} has characters a host name cannot have")
        if not host.isascii():
            import idna  # what the HTTP client checks international names with

            try:
                idna.encode(host, uts46=True)
            except (idna.IDNAError, UnicodeError):
                raise bad(f"the host {host!r} is not a valid international name") from None
        if re.fullmatch(r"[0-9.]+", host):
            import ipaddress

            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise bad(f"{host!r} is not an IPv4 address") from None
    else:
        port_text = netloc.rpartition("]")[2].removeprefix(":")
    if port_text:
        if not port_text.isdigit():
            raise bad(f"the port {port_text!r} is not a number")
        if not 0 < int(port_text) < 65536:
            raise bad(f"the port {port_text} is out of range (1-65535)")
    return url


def guess_transport(url: str, transport: str | None) -> Literal["http", "sse"]:
    if transport in ("http", "streamable-http", "streamable_http", "streamableHttp"):
        return "http"
    if transport == "sse":
        return "sse"
    if transport is not None:
        raise ConfigError(f"unknown transport {transport!r}: expected 'http' or 'sse'")
    return "sse" if urlsplit(url).path.rstrip("/").endswith("/sse") else "http"


def http_spec(
    url: str,
    headers: list[str] | None = None,
    transport: str | None = None,
    oauth: OAuthSettings | None = None,
) -> HttpSpec:
    check_url(url)
    parsed = dict(parse_header(h) for h in headers or [])
    return HttpSpec(url=url, headers=parsed, transport=guess_transport(url, transport),
                    oauth=oauth)


def split_command(text: str) -> list[str]:
    """A command line given as one string, split like a shell would."""
    import shlex

    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ConfigError(f"cannot parse the command {text!r}: {exc}") from None


def stdio_spec(
    command: list[str], env: list[str] | None = None, cwd: str | None = None
) -> StdioSpec:
    if not command:
        raise ConfigError("missing server command: use %mcp connect NAME -- COMMAND [ARGS...]")
    if cwd is not None and not Path(cwd).expanduser().is_dir():
        raise ConfigError(f"--cwd {cwd!r} is not a directory")
    return StdioSpec(
        command=command[0],
        args=tuple(command[1:]),
        env=dict(parse_env(e) for e in env or []),
        cwd=str(Path(cwd).expanduser()) if cwd else None,
    )


_NODE_HINT = "install Node.js, which brings npm and npx (https://nodejs.org)"
_UV_HINT = "pip install uv (or see https://docs.astral.sh/uv/)"
COMMAND_HINTS = {
    "uvx": _UV_HINT,
    "uv": _UV_HINT,
    "npx": _NODE_HINT,
    "npm": _NODE_HINT,
    "node": _NODE_HINT,
    "pipx": "pip install pipx",
    "bunx": "install Bun (https://bun.sh)",
    "bun": "install Bun (https://bun.sh)",
    "deno": "install Deno (https://deno.com)",
    "docker": "install Docker (https://docs.docker.com/get-docker/)",
}
"""How to get the launchers that READMEs of MCP servers use."""


def resolve_command(spec: StdioSpec) -> str:
    """The executable to start for a stdio spec, or a ConfigError saying how to get it.

    A command not on PATH is also looked for next to the kernel's Python: `pip install
    uv` in the kernel's environment puts `uvx` there, and a Jupyter started from
    elsewhere may not have that directory on PATH.
    """
    if spec.cwd is not None and not Path(spec.cwd).is_dir():
        raise ConfigError(f"working directory {spec.cwd!r} does not exist")
    command = spec.command
    if "/" in command or (os.altsep is not None and os.altsep in command):
        path = Path(command).expanduser()
        if not path.is_absolute() and spec.cwd:
            path = Path(spec.cwd) / path
        if not path.exists():
            raise ConfigError(f"server command {command!r} not found")
        if path.is_dir() or not os.access(path, os.X_OK):
            runner = f" (run it with python: -- python {command})" if path.suffix == ".py" else ""
            raise ConfigError(f"server command {command!r} is not executable{runner}")
        return str(path)
    search = spec.env.get("PATH")
    search = expand_vars(search, strict=False) if search else os.environ.get("PATH", os.defpath)
    if shutil.which(command, path=search):
        return command
    beside_python = shutil.which(command, path=str(Path(sys.executable).parent))
    if beside_python:
        return beside_python
    hint = COMMAND_HINTS.get(command)
    raise ConfigError(f"{command} not found: {hint}" if hint else f"{command!r} not found on PATH")


def builtin_spec(
    db: str | None = None, root: str | None = None, allow_writes: bool = False
) -> StdioSpec:
    """The data server shipped in this package, run with this kernel's Python."""
    args = ["-m", "mcp_magic.server"]
    if db is not None:
        if not Path(db).expanduser().is_file():
            raise ConfigError(f"--db {db!r} does not exist")
        args += ["--db", str(Path(db).expanduser().resolve())]
    if root is not None:
        if not Path(root).expanduser().is_dir():
            raise ConfigError(f"--root {root!r} is not a directory")
        args += ["--root", str(Path(root).expanduser().resolve())]
    else:
        args += ["--root", os.getcwd()]
    label = f"built-in data server (root {Path(args[args.index('--root') + 1]).name}/)"
    if allow_writes:
        args.append("--allow-writes")
    # The package may not be installed (a source checkout): make it importable.
    package_parent = str(Path(__file__).resolve().parents[2])  # mcp_magic/host/config.py
    return StdioSpec(
        command=sys.executable,
        args=tuple(args),
        env={"PYTHONPATH": package_parent},
        label=label + (", writable" if allow_writes else ""),
    )


def load_config_file(path: str) -> dict[str, ServerSpec | ConfigError]:
    """Read an `mcpServers` (Claude Desktop, mcphost, Cursor) or `servers` (VS Code) file.

    One bad entry does not spoil the others: it maps to its ConfigError.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"config file {path!r} not found")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"config file {path!r} is not valid JSON: {exc.msg} (line {exc.lineno})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path!r} cannot be read: {exc}") from None
    servers = data.get("mcpServers", data.get("servers")) if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError(f"config file {path!r} has no 'mcpServers' (or 'servers') object")
    specs: dict[str, ServerSpec | ConfigError] = {}
    for name, entry in servers.items():
        try:
            check_name(name)
            if isinstance(entry, dict) and entry.get("disabled"):
                continue
            specs[name] = _spec_from_entry(name, entry, base=file.parent)
        except ConfigError as exc:
            specs[name] = exc
    return specs


def _spec_from_entry(name: str, entry: object, base: Path) -> ServerSpec:
    if not isinstance(entry, dict):
        raise ConfigError(f"server {name!r}: expected an object")
    kind = entry.get("type", entry.get("transport"))
    if "url" in entry or kind in ("http", "sse", "streamable-http", "streamableHttp"):
        url = entry.get("url")
        if not isinstance(url, str):
            raise ConfigError(f"server {name!r}: 'url' must be a string")
        headers = entry.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise ConfigError(f"server {name!r}: 'headers' must map names to strings")
        headers = dict(parse_header(f"{key}: {value}") for key, value in headers.items())
        check_url(url)
        return HttpSpec(url=url, headers=headers, transport=guess_transport(url, kind),
                        oauth=oauth_settings(name, entry.get("oauth")),
                        roots=_roots(name, entry, base))
    command = entry.get("command")
    if not isinstance(command, str) or not command:
        raise ConfigError(f"server {name!r}: needs 'command' (stdio) or 'url' (remote)")
    args = entry.get("args") or []
    env = entry.get("env") or {}
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError(f"server {name!r}: 'args' must be a list of strings")
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ConfigError(f"server {name!r}: 'env' must map names to strings")
    for key in env:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ConfigError(f"server {name!r}: {key!r} in 'env' is not a variable name")
    cwd = entry.get("cwd") or None
    if cwd is not None and not isinstance(cwd, str):
        raise ConfigError(f"server {name!r}: 'cwd' must be a string")
    if cwd is not None:
        cwd = str((base / Path(cwd).expanduser()).resolve())
    return StdioSpec(command=command, args=tuple(args), env=dict(env), cwd=cwd,
                     roots=_roots(name, entry, base))


def _roots(name: str, entry: dict, base: Path) -> tuple[str, ...] | None:
    """An entry's "roots": directories, relative ones to the file's directory."""
    roots = entry.get("roots")
    if roots is None:
        return None
    if not isinstance(roots, list) or not all(isinstance(r, str) and r for r in roots):
        raise ConfigError(f"server {name!r}: 'roots' must be a list of directories")
    return tuple(str((base / Path(r).expanduser()).resolve()) for r in roots)


def oauth_settings(name: str, entry: object) -> OAuthSettings | None:
    """An entry's "oauth" object, as VS Code and Claude Desktop files carry it:
    clientId, clientSecret, scopes (list or string), grant ("client_credentials")."""
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise ConfigError(f"server {name!r}: 'oauth' must be an object")
    def pick(*keys: str) -> str | None:
        for key in keys:
            value = entry.get(key)
            if value is not None:
                if not isinstance(value, str):
                    raise ConfigError(f"server {name!r}: oauth {key!r} must be a string")
                return expand_vars(value)
        return None
    scopes = entry.get("scopes", entry.get("scope"))
    if isinstance(scopes, list):
        scopes = " ".join(str(s) for s in scopes)
    port = entry.get("redirectPort", entry.get("redirect_port"))
    if port is not None and (not isinstance(port, int) or isinstance(port, bool)
                             or not 0 < port < 65536):
        raise ConfigError(f"server {name!r}: oauth 'redirectPort' must be a port number")
    paste = entry.get("paste")
    if paste is not None and not isinstance(paste, bool):
        raise ConfigError(f"server {name!r}: oauth 'paste' must be true or false")
    return OAuthSettings(
        client_id=pick("clientId", "client_id"),
        client_secret=pick("clientSecret", "client_secret"),
        scopes=scopes or None,
        grant=pick("grant", "grantType", "grant_type") or "authorization_code",
        redirect_port=port,
        paste=paste,
    )


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
