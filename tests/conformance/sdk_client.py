"""The raw `mcp` SDK as a conformance client, for comparison with mcp_magic's `Host`.

Written in the style of the SDK's own example clients: `mcp.Client` over streamable
HTTP; auth scenarios use the SDK's OAuth providers, and the authorization step follows
the harness's authorization URL with an HTTP client instead of a browser.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx2
from mcp import Client, types
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)


class Memory:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.info = client_info


class Browser:
    """Follows the authorization URL once and keeps the code from the redirect."""

    def __init__(self) -> None:
        self.result: AuthorizationCodeResult | None = None

    async def redirect(self, url: str) -> None:
        async with httpx2.AsyncClient() as http:
            answer = await http.get(url, follow_redirects=False)
        query = parse_qs(urlparse(answer.headers.get("location", "")).query)
        if "code" not in query:
            raise RuntimeError(f"no code in the redirect ({answer.status_code})")
        self.result = AuthorizationCodeResult(
            code=query["code"][0],
            state=(query.get("state") or [None])[0],
            iss=(query.get("iss") or [None])[0],
        )

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None
        result, self.result = self.result, None
        return result


async def accept_defaults(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    schema = getattr(params, "requested_schema", None) or {}
    content = {k: v["default"] for k, v in schema.get("properties", {}).items() if "default" in v}
    for key, spec in schema.get("properties", {}).items():
        if key not in content and spec.get("type") == "boolean":
            content[key] = True
    return types.ElicitResult(action="accept", content=content)


def oauth_for(url: str, scenario: str) -> Any:
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    if scenario == "auth/client-credentials-jwt":
        return PrivateKeyJWTOAuthProvider(
            server_url=url, storage=Memory(), client_id=context["client_id"],
            assertion_provider=SignedJWTParameters(
                issuer=context["client_id"], subject=context["client_id"],
                signing_algorithm=context.get("signing_algorithm", "ES256"),
                signing_key=context["private_key_pem"],
            ).create_assertion_provider(),
        )
    if scenario == "auth/client-credentials-basic":
        return ClientCredentialsOAuthProvider(
            server_url=url, storage=Memory(), client_id=context["client_id"],
            client_secret=context["client_secret"],
            token_endpoint_auth_method="client_secret_basic",
        )
    if scenario in ("auth/cross-app-access-complete-flow", "auth/enterprise-managed-authorization"):
        return identity_assertion(url, context)
    browser = Browser()
    storage = Memory()
    if context.get("client_id"):  # pre-registration
        storage.info = OAuthClientInformationFull(
            client_id=context["client_id"], client_secret=context.get("client_secret"),
            redirect_uris=["http://localhost:3000/callback"],
            token_endpoint_auth_method="client_secret_basic",
        )
    return OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="sdk-conformance-client",
            redirect_uris=["http://localhost:3000/callback"],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage=storage,
        redirect_handler=browser.redirect,
        callback_handler=browser.callback,
        client_metadata_url="https://conformance-test.local/client-metadata.json",
    )


def identity_assertion(url: str, context: dict) -> Any:
    """SEP-990: leg 1 (ID token -> ID-JAG at the identity provider) is the caller's."""
    from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider

    origin = url.split("/mcp")[0]
    prm = httpx2.get(f"{origin}/.well-known/oauth-protected-resource/mcp").json()
    metadata = f"{prm['authorization_servers'][0]}/.well-known/oauth-authorization-server"
    issuer = httpx2.get(metadata).json()["issuer"]

    async def id_jag(audience: str, resource: str) -> str:
        async with httpx2.AsyncClient() as http:
            answer = await http.post(context["idp_token_endpoint"], data={
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "requested_token_type": "urn:ietf:params:oauth:token-type:id-jag",
                "audience": audience, "resource": resource,
                "subject_token": context["idp_id_token"],
                "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
                "client_id": context["idp_client_id"],
            })
        return answer.json()["access_token"]

    return IdentityAssertionOAuthProvider(
        server_url=url, storage=Memory(), client_id=context["client_id"],
        client_secret=context["client_secret"], issuer=issuer, assertion_provider=id_jag,
        token_endpoint_auth_method="client_secret_basic",
    )


async def main(url: str, scenario: str) -> None:
    auth = oauth_for(url, scenario) if scenario.startswith("auth/") else None
    async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, elicitation_callback=accept_defaults) as client:
            tools = (await client.list_tools()).tools
            name = {
                "tools_call": "add_numbers", "sse-retry": "test_reconnection",
                "elicitation-sep1034-client-defaults": "test_client_elicitation_defaults",
            }.get(scenario)
            if name is None and scenario.startswith("auth/") and tools:
                name = tools[0].name
            if name:
                args = {"a": 5, "b": 3} if name == "add_numbers" else {}
                await client.call_tool(name, args)
            if scenario == "sep-2322-client-request-state":
                for tool in ("test_mrtr_echo_state", "test_mrtr_unrelated",
                             "test_mrtr_no_state", "test_mrtr_no_result_type"):
                    await client.call_tool(tool, {})
            if scenario == "json-schema-2020-12-preservation":
                focal = next(t for t in tools if t.name == "json_schema_2020_12_tool")
                await client.call_tool("json_schema_echo", {"schema": focal.input_schema})


if __name__ == "__main__":
    asyncio.run(main(sys.argv[-1], os.environ.get("MCP_CONFORMANCE_SCENARIO", "")))
