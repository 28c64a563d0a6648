"""MCP Apps: a tool's interactive view (the ``io.modelcontextprotocol/ui`` extension).

A tool that has a view names a ``ui://`` resource in ``_meta.ui.resourceUri``; the resource
is HTML of MIME type ``text/html;profile=mcp-app``. The host advertises the extension so
servers offer their views, reads the resource through the session, and renders it in a
sandboxed iframe (``mcp_magic.apps.widget``) that talks JSON-RPC over ``postMessage`` with
the official ext-apps ``AppBridge`` in the page. What the view asks of the kernel
(``tools/call``, ``resources/read``) goes through `ViewBridge` (``mcp_magic.apps.bridge``).

This module is pure: it imports neither IPython nor ipywidgets nor ``mcp`` at import time.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

EXTENSION_ID = "io.modelcontextprotocol/ui"
APP_MIME_TYPE = "text/html;profile=mcp-app"
LEGACY_URI_KEY = "ui/resourceUri"  # the pre-2026 flat key some servers still send
HTML_LIMIT = 5_000_000  # characters of a view's HTML the host accepts

__all__ = [
    "APP_MIME_TYPE",
    "EXTENSION_ID",
    "ViewResource",
    "build_csp",
    "client_extensions",
    "inject_csp",
    "view_uri",
]


def client_extensions() -> list[Any]:
    """What `mcp.Client(extensions=...)` needs to announce that this host renders views."""
    from mcp.client.extension import advertise

    return [advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})]


def _meta(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        meta = obj.get("_meta") or obj.get("meta")
    else:
        meta = getattr(obj, "meta", None)
    return meta if isinstance(meta, dict) else {}


def view_uri(tool: Any) -> str | None:
    """The ``ui://`` resource a tool (SDK `Tool` or dict) is rendered with, else None."""
    meta = _meta(tool)
    ui = meta.get("ui")
    uri = ui.get("resourceUri") if isinstance(ui, dict) else None
    uri = uri or meta.get(LEGACY_URI_KEY)
    return uri if isinstance(uri, str) and uri.startswith("ui://") else None


def visible_to_app(tool: Any) -> bool:
    """Whether a view may call this tool (``_meta.ui.visibility`` includes "app", the default)."""
    ui = _meta(tool).get("ui")
    visibility = ui.get("visibility") if isinstance(ui, dict) else None
    return not isinstance(visibility, list) or "app" in visibility


def visible_to_model(tool: Any) -> bool:
    """Whether a model may call this tool: not one meant for its view alone
    (``_meta.ui.visibility`` without "model"; the default is both)."""
    ui = _meta(tool).get("ui")
    visibility = ui.get("visibility") if isinstance(ui, dict) else None
    return not isinstance(visibility, list) or "model" in visibility


def read_only(tool: Any) -> bool:
    """Whether the tool says it only reads (MCP annotations ``readOnlyHint``)."""
    annotations = getattr(tool, "annotations", None)
    if isinstance(tool, dict):
        annotations = tool.get("annotations")
    if annotations is None:
        return False
    if isinstance(annotations, dict):
        return bool(annotations.get("readOnlyHint"))
    return bool(getattr(annotations, "read_only_hint", False))


@dataclass
class ViewResource:
    """A view's HTML and what its ``_meta.ui`` asks of the host."""

    uri: str
    html: str
    csp: dict[str, Any] = field(default_factory=dict)
    permissions: dict[str, Any] = field(default_factory=dict)
    prefers_border: bool | None = None

    @classmethod
    def from_contents(cls, uri: str, contents: list[Any]) -> ViewResource:
        """The view out of a ``resources/read`` answer; ValueError says what is wrong."""
        for item in contents:
            text = getattr(item, "text", None)
            mime = (getattr(item, "mime_type", None) or "").replace(" ", "").lower()
            if text is None:
                continue
            if mime and not mime.startswith("text/html"):
                raise ValueError(f"{uri} is {mime}, not {APP_MIME_TYPE}")
            if len(text) > HTML_LIMIT:
                raise ValueError(f"{uri} is {len(text):,} characters, over {HTML_LIMIT:,}")
            ui = _meta(item).get("ui")
            ui = ui if isinstance(ui, dict) else {}
            csp = ui.get("csp") if isinstance(ui.get("csp"), dict) else {}
            permissions = ui.get("permissions") if isinstance(ui.get("permissions"), dict) else {}
            border = ui.get("prefersBorder")
            return cls(uri, text, csp, permissions, border if isinstance(border, bool) else None)
        raise ValueError(f"{uri} has no HTML text")


# A CSP source the host accepts from a server: a scheme+host (with optional port, wildcard
# subdomain and path), nothing that could close the directive or add keywords.
_SOURCE = re.compile(r"^(https?|wss?)://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5}|:\*)?(/[^\s;,'\"]*)?$")


def _sources(values: Any) -> list[str]:
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, str) and _SOURCE.match(v)][:50]


def build_csp(csp: dict[str, Any] | None) -> str:
    """The Content-Security-Policy for a view, from its resource's ``_meta.ui.csp``.

    The default is the spec's: inline script and style only, no network, no frames.
    Domains the server declares open exactly the directives they are declared for;
    anything that is not a plain origin is dropped.
    """
    csp = csp or {}
    connect = _sources(csp.get("connectDomains"))
    resources = _sources(csp.get("resourceDomains"))
    frames = _sources(csp.get("frameDomains"))
    bases = _sources(csp.get("baseUriDomains"))

    def directive(name: str, base: list[str], extra: list[str]) -> str:
        values = base + extra
        return f"{name} {' '.join(values) if values else chr(39) + 'none' + chr(39)}"

    inline = ["'unsafe-inline'"]
    return "; ".join([
        "default-src 'none'",
        directive("script-src", inline + ["blob:", "data:"], resources),
        directive("style-src", inline + ["data:"], resources),
        directive("img-src", ["data:", "blob:"], resources),
        directive("font-src", ["data:"], resources),
        directive("media-src", ["data:", "blob:"], resources),
        directive("connect-src", [], connect),
        directive("frame-src", [], frames),
        directive("base-uri", [], bases),
        "object-src 'none'",
        "form-action 'none'",
    ])


_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)
_HTML = re.compile(r"<html(\s[^>]*)?>", re.IGNORECASE)


def inject_csp(document: str, policy: str) -> str:
    """The document with the policy as the first element of its ``<head>``.

    A ``<meta>`` policy placed before any script binds everything after it, and a later
    one in the document can only narrow it, never widen it.
    """
    tag = f'<meta http-equiv="Content-Security-Policy" content="{html.escape(policy)}">'
    match = _HEAD.search(document)
    if match:
        return document[: match.end()] + tag + document[match.end():]
    match = _HTML.search(document)
    if match:
        return document[: match.end()] + "<head>" + tag + "</head>" + document[match.end():]
    return "<!DOCTYPE html><html><head>" + tag + "</head><body>" + document + "</body></html>"
