"""The conformance harness's client, driving mcp_magic's public API (`Host`).

The harness (`conformance client --command "python client.py"`) appends the server URL
as the last argument and names the scenario in `MCP_CONFORMANCE_SCENARIO`; credential
scenarios also pass `MCP_CONFORMANCE_CONTEXT` (JSON). Exit 0 when the scenario's steps
ran; the harness judges what the server saw. The harness plays the authorization server
and consents by itself, so the "browser" here follows the authorization URL over HTTP.
"""

from __future__ import annotations

import json
import os
import sys

from mcp_magic import Host
from mcp_magic.host.auth import FollowingAuthorizer, OAuth, OAuthSettings, TokenStore
from mcp_magic.host.client_requests import Elicitation, accept_defaults

# The harness serves no metadata document; it accepts this URL as the client id (CIMD).
CIMD_URL = "https://conformance-test.local/client-metadata.json"


def settings(scenario: str, url: str) -> OAuthSettings:
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    if scenario.startswith("auth/client-credentials"):
        return OAuthSettings(
            client_id=context.get("client_id"),
            client_secret=context.get("client_secret"),
            private_key=context.get("private_key_pem"),
            signing_algorithm=context.get("signing_algorithm", "ES256"),
            grant="client_credentials",
        )
    if scenario in ("auth/cross-app-access-complete-flow", "auth/enterprise-managed-authorization"):
        return OAuthSettings(
            grant="identity_assertion",
            client_id=context.get("client_id"),
            client_secret=context.get("client_secret"),
            issuer=issuer_of(url),
            idp_token_endpoint=context.get("idp_token_endpoint"),
            idp_client_id=context.get("idp_client_id"),
            id_token=context.get("idp_id_token"),
        )
    return OAuthSettings(
        client_id=context.get("client_id"),
        client_secret=context.get("client_secret"),
        client_metadata_url=CIMD_URL,
    )


def issuer_of(url: str) -> str:
    """The authorization server named by the server's protected-resource metadata; in real
    use an administrator configures it (the SDK will not take it from the server)."""
    import httpx2

    origin = url.split("/mcp")[0]
    prm = httpx2.get(f"{origin}/.well-known/oauth-protected-resource/mcp").json()
    server = prm["authorization_servers"][0]
    return httpx2.get(f"{server}/.well-known/oauth-authorization-server").json()["issuer"]


def answer(request: Elicitation) -> dict:
    """Submit the form with its defaults; a yes/no question without one is confirmed."""
    values = accept_defaults(request).content or {}
    for key, spec in (request.schema.get("properties") or {}).items():
        if key not in values and spec.get("type") == "boolean":
            values[key] = True
    return values


def main() -> int:
    url = sys.argv[-1]
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    oauth = OAuth(TokenStore(memory=True), FollowingAuthorizer)
    with Host(connect_timeout=20, elicit=answer, oauth=oauth) as host:
        host.connect("s", url=url, oauth=settings(scenario, url))
        tools = host.tools("s")
        if scenario == "tools_call":
            host.call("s.add_numbers", a=5, b=3)
        elif scenario == "sse-retry":
            host.call("s.test_reconnection")
        elif scenario.startswith("elicitation"):
            host.call("s.test_client_elicitation_defaults")
        elif scenario == "sep-2322-client-request-state":  # 2026 multi-round-trip
            for tool in ("test_mrtr_echo_state", "test_mrtr_unrelated", "test_mrtr_no_state",
                         "test_mrtr_no_result_type"):
                host.call(f"s.{tool}")
        elif scenario == "json-schema-2020-12-preservation":
            schema = tools["json_schema_2020_12_tool"].input_schema
            host.call("s.json_schema_echo", schema=schema)
        elif scenario.startswith("auth/") and tools:
            host.call(f"s.{next(iter(tools))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
