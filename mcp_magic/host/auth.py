"""OAuth 2.1 for remote servers, on the SDK's OAuth client (`mcp.client.auth`).

The SDK does discovery (protected-resource and authorization-server metadata), client
registration (Client ID Metadata Documents, dynamic registration, pre-registered ids),
PKCE, scopes and step-up, token endpoint auth and refresh. This module supplies what a
host must: where tokens live (the OS keyring through the optional `keyring` package, else
a 0600 file under the user's config directory, or memory),
how the user is sent to the authorization page and how the code comes back (a loopback
listener on 127.0.0.1), and the pre-registered or client-credentials settings.

Tokens never leave the store: `token_summary` shows scopes and expiry only.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import sys
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

CLIENT_NAME = "mcp-magic"


@dataclass(frozen=True)
class OAuthSettings:
    """What a server entry may say about OAuth (`--client-id`, `mcpServers` "oauth")."""

    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    scopes: str | None = None
    grant: str = "authorization_code"
    """"authorization_code" (a user consents in a browser), "client_credentials", or
    "identity_assertion" (enterprise-managed, SEP-990: the company's identity provider
    vouches for the user; needs `issuer` and the `idp_*` settings)."""
    private_key: str | None = field(default=None, repr=False)
    """A PEM key for client credentials with a private-key JWT instead of a secret."""
    signing_algorithm: str = "ES256"
    token_endpoint_auth_method: str | None = None
    client_metadata_url: str | None = None
    """An https URL of this client's metadata document (CIMD), if it has one."""
    issuer: str | None = None
    """The authorization server's issuer, when it is configuration (identity assertion)."""
    idp_token_endpoint: str | None = None
    idp_client_id: str | None = None
    id_token: str | None = field(default=None, repr=False)
    """The user's ID token from the identity provider, exchanged there for an ID-JAG."""
    redirect_port: int | None = None
    """A fixed loopback port, for a client registered in advance with the redirect URI
    http://127.0.0.1:PORT/callback."""
    paste: bool | None = None
    """True: the browser cannot reach this kernel (JupyterHub, Binder, a remote kernel), so
    the user pastes the address it was redirected to. None: guessed (`remote_kernel`)."""

    def secrets(self) -> list[str]:
        return [s for s in (self.client_secret, self.private_key, self.id_token) if s]


# -- where tokens live -------------------------------------------------------------


def token_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mcp_magic" / "oauth.json"


KEYRING_SERVICE = "mcp_magic"
_SECRET_PARTS = ("tokens", "client")  # what goes to the keyring when there is one


def keyring_backend() -> Any:
    """The OS keyring, if a usable one is installed; else None (tokens go to the file).

    `keyring` is optional and imported only here. A backend the user chose (the
    PYTHON_KEYRING_BACKEND variable or keyring's keyringrc.cfg) is used whatever it is;
    one picked automatically must be a real store (priority 1 or more: the desktop's
    Secret Service, KWallet, the macOS or Windows keychain), not keyrings.alt's plain
    text file, which is no safer than our 0600 file."""
    try:
        import keyring
        import keyring.core
        from keyring.backends import fail
    except Exception:
        return None
    try:
        backend = keyring.get_keyring()
        chosen = bool(os.environ.get("PYTHON_KEYRING_BACKEND")) or (
            keyring.core.load_config() is not None
        )
    except Exception:
        return None
    if isinstance(backend, fail.Keyring) or type(backend).__module__.endswith(".null"):
        return None
    try:
        priority = float(backend.priority)
    except Exception:
        priority = 0.0
    return backend if chosen or priority >= 1 else None


class TokenStore:
    """Tokens and client registrations per server URL: in the OS keyring when a usable
    one is installed (`keyring_backend`), else a 0600 JSON file; or memory only.

    With a keyring the file still lists the servers (name, scopes, expiry: what
    `%mcp auth` shows) but holds no token and no client secret. `keyring`: None picks
    the keyring when usable, False never uses it. Read on first use, not at import."""

    def __init__(self, path: Path | None = None, memory: bool = False,
                 keyring: bool | None = None) -> None:
        self.path = None if memory else (path or token_file())
        self._want_keyring = keyring
        self._keyring: Any = None
        self._loaded: dict[str, dict[str, Any]] | None = {} if self.path is None else None
        self._in_keyring: dict[str, str] = {}  # what each keyring entry holds now

    @property
    def keyring(self) -> Any:
        """The keyring backend tokens go to, or None (the file)."""
        self._data  # noqa: B018 (loads)
        return self._keyring

    @property
    def _data(self) -> dict[str, dict[str, Any]]:
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def _load(self) -> dict[str, dict[str, Any]]:
        assert self.path is not None
        if self._want_keyring is not False:
            self._keyring = keyring_backend()
        data: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
            except (OSError, ValueError):
                data = {}
        for key, entry in data.items():
            if not entry.pop("in_keyring", False):
                continue
            entry.pop("scope", None), entry.pop("refreshable", None)
            try:
                saved = self._keyring.get_password(KEYRING_SERVICE, key) if self._keyring else None
            except Exception:
                saved = None
            if saved:
                self._in_keyring[key] = saved
                with contextlib.suppress(ValueError):
                    entry.update(json.loads(saved))
        return data

    def get(self, key: str) -> dict[str, Any]:
        return self._data.get(key, {})

    def put(self, key: str, **values: Any) -> None:
        self._data.setdefault(key, {}).update(values)
        self._save()

    def forget(self, key: str) -> bool:
        found = self._data.pop(key, None) is not None
        self._save()
        return found

    def servers(self) -> list[str]:
        return [k for k, v in self._data.items() if v.get("tokens")]

    def _save(self) -> None:
        if self.path is None:
            return
        on_disk: dict[str, dict[str, Any]] = {}
        for key, entry in self._data.items():
            if self._keyring is None:
                on_disk[key] = entry
                continue
            secret = {k: entry[k] for k in _SECRET_PARTS if k in entry}
            text = json.dumps(secret, sort_keys=True)
            if secret and self._in_keyring.get(key) != text:
                try:
                    self._keyring.set_password(KEYRING_SERVICE, key, text)
                except Exception:  # locked, refused, gone: the file, from now on
                    self._keyring = None
                    return self._save()
                self._in_keyring[key] = text
            tokens = entry.get("tokens") or {}
            on_disk[key] = {k: v for k, v in entry.items() if k not in _SECRET_PARTS}
            if secret:
                on_disk[key].update(in_keyring=True, scope=tokens.get("scope"),
                                    refreshable=bool(tokens.get("refresh_token")))
        if self._keyring is not None:
            for key in set(self._in_keyring) - {k for k, v in on_disk.items()
                                                if v.get("in_keyring")}:
                with contextlib.suppress(Exception):
                    self._keyring.delete_password(KEYRING_SERVICE, key)
                del self._in_keyring[key]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(on_disk, out)
        os.chmod(self.path, 0o600)


class _ServerStorage:
    """The SDK's `TokenStorage` for one server, backed by a `TokenStore`."""

    def __init__(self, store: TokenStore, key: str) -> None:
        self.store, self.key = store, key

    async def get_tokens(self) -> Any:
        from mcp.shared.auth import OAuthToken

        saved = self.store.get(self.key).get("tokens")
        return OAuthToken.model_validate(saved) if saved else None

    async def set_tokens(self, tokens: Any) -> None:
        expires = time.time() + tokens.expires_in if tokens.expires_in else None
        self.store.put(self.key, tokens=tokens.model_dump(mode="json"), expires_at=expires)

    async def get_client_info(self) -> Any:
        from mcp.shared.auth import OAuthClientInformationFull

        saved = self.store.get(self.key).get("client")
        return OAuthClientInformationFull.model_validate(saved) if saved else None

    async def set_client_info(self, client_info: Any) -> None:
        self.store.put(self.key, client=client_info.model_dump(mode="json", exclude_none=True))


def token_summary(store: TokenStore) -> list[dict[str, Any]]:
    """Servers holding tokens: scopes and expiry, never the tokens."""
    rows = []
    for key in store.servers():
        entry = store.get(key)
        tokens = entry.get("tokens") or {}
        expires = entry.get("expires_at")
        rows.append({
            "server": entry.get("name") or key,
            "url": key,
            "scopes": tokens.get("scope") or "",
            "expires": (
                "never" if not expires
                else "expired" if expires < time.time()
                else f"in {int(expires - time.time()) // 60} min"
            ),
            "refreshable": bool(tokens.get("refresh_token")),
        })
    return rows


# -- sending the user to the authorization page -----------------------------------


class Authorizer:
    """Sends the user to the authorization URL and waits for the redirect's code."""

    redirect_uri: str = "http://127.0.0.1/callback"

    async def redirect(self, url: str) -> None:
        raise NotImplementedError

    async def callback(self) -> Any:
        raise NotImplementedError


def _code_from(location: str) -> Any:
    from mcp.shared.auth import AuthorizationCodeResult

    query = parse_qs(urlparse(location).query)
    if "code" not in query:
        error = (query.get("error") or ["no code in the redirect"])[0]
        raise AuthorizationFailed(f"authorization refused: {error}")
    return AuthorizationCodeResult(
        code=query["code"][0],
        state=(query.get("state") or [None])[0],
        iss=(query.get("iss") or [None])[0],
    )


class AuthorizationFailed(Exception):
    pass


class LoopbackAuthorizer(Authorizer):
    """Shows the link (and opens a local browser); a listener on 127.0.0.1 catches the
    redirect. `show(url)` is how the link reaches the user (a cell link, a terminal line;
    it may return an awaitable). `port`: a fixed one, for a pre-registered redirect URI."""

    def __init__(self, show: Callable[[str], Any] | None = None, timeout: float = 300,
                 port: int | None = None) -> None:
        self.show = show or show_link
        self.timeout = timeout
        self.fixed_port = port
        # A free port now (the redirect URI is registered before any 401); it is
        # listened on only while an authorization is pending.
        if port is not None:  # checked when listened on: a taken port fails that connect
            self.port, self.redirect_uri = port, f"http://127.0.0.1:{port}/callback"
        else:
            self.use_port(0)
        self._result: asyncio.Future[Any] | None = None
        self._server: asyncio.AbstractServer | None = None

    def use_port(self, port: int) -> bool:
        """Listen on `port` (0: any free one); False if it is taken."""
        import socket

        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio will
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
            self.port = probe.getsockname()[1]
        self.redirect_uri = f"http://127.0.0.1:{self.port}/callback"
        return True

    async def redirect(self, url: str) -> None:
        self._result = asyncio.get_running_loop().create_future()
        try:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        except OSError:
            raise AuthorizationFailed(_port_taken(self.port)) from None
        shown = self.show(url)
        if inspect.isawaitable(shown):
            await shown
        if os.environ.get("MCP_MAGIC_NO_BROWSER") is None:
            import webbrowser  # only here: it imports subprocess and more, not for %load_ext

            with contextlib.suppress(Exception):
                webbrowser.open(url)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode("latin-1")
        target = line.split(" ")[1] if " " in line else "/"
        try:
            result: Any = _code_from(target)
            body = "Authorized. You can close this tab and go back to the notebook."
        except AuthorizationFailed as exc:
            result, body = exc, str(exc)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n"
            + body.encode()
        )
        await writer.drain()
        writer.close()
        if self._result is not None and not self._result.done() and urlparse(target).path == (
            "/callback"
        ):
            self._result.set_result(result)

    async def callback(self) -> Any:
        assert self._result is not None
        try:
            result = await asyncio.wait_for(self._result, self.timeout)
        except asyncio.TimeoutError:
            raise AuthorizationFailed(
                f"no authorization within {self.timeout:g} s"
            ) from None
        finally:
            if self._server is not None:
                self._server.close()
        if isinstance(result, Exception):
            raise result
        return result


def _port_taken(port: int) -> str:
    return (
        f"the OAuth redirect port {port} on 127.0.0.1 is taken (another program or a "
        "pending authorization); free it or register another port"
    )


class PasteAuthorizer(Authorizer):
    """For a kernel the browser cannot reach (JupyterHub, Binder, a remote kernel): the
    link is shown, the browser is redirected to a loopback address that does not load,
    and the user pastes that address back. `ask(url)` shows the link and returns the
    pasted address (awaitable); the code and state are taken from it."""

    def __init__(self, ask: Callable[[str], Any], port: int | None = None) -> None:
        self.ask = ask
        self.redirect_uri = f"http://127.0.0.1:{port or 8976}/callback"
        self._url = ""
        self._pasted: str | None = None

    async def redirect(self, url: str) -> None:
        self._url = url
        pasted = self.ask(url)
        self._pasted = await pasted if inspect.isawaitable(pasted) else pasted

    async def callback(self) -> Any:
        pasted, self._pasted = self._pasted, None
        return code_from_pasted(pasted or "", self._url)


def code_from_pasted(pasted: str, authorization_url: str) -> Any:
    """The code in an address pasted back, checked against the authorization it answers."""
    pasted = pasted.strip()
    if not pasted:
        raise AuthorizationFailed("no address was pasted (cancelled)")
    if "?" not in pasted:
        raise AuthorizationFailed(
            "the pasted text is not the redirected address (it has no ?code=...)"
        )
    result = _code_from(pasted)
    expected = (parse_qs(urlparse(authorization_url).query).get("state") or [None])[0]
    if expected is not None and result.state != expected:
        raise AuthorizationFailed(
            "the pasted address answers another authorization (its state does not match); "
            "connect again and paste the newest one"
        )
    return result


def remote_kernel(environ: Any = None) -> bool:
    """A guess that the user's browser cannot reach this machine's 127.0.0.1."""
    environ = os.environ if environ is None else environ
    return any(k.startswith(("JUPYTERHUB_", "BINDER_")) for k in environ)


class FollowingAuthorizer(Authorizer):
    """Follows the authorization URL with an HTTP client: for authorization servers that
    consent without a person (tests, the conformance harness)."""

    def __init__(self, redirect_uri: str = "http://localhost:3000/callback") -> None:
        self.redirect_uri = redirect_uri
        self._result: Any = None

    async def redirect(self, url: str) -> None:
        import httpx2

        async with httpx2.AsyncClient() as http:
            answer = await http.get(url, follow_redirects=False)
        self._result = _code_from(answer.headers.get("location", ""))

    async def callback(self) -> Any:
        result, self._result = self._result, None
        if result is None:
            raise AuthorizationFailed("no authorization code")
        return result


# -- the SDK's provider for one server ---------------------------------------------


def provider_for(
    url: str,
    name: str,
    settings: OAuthSettings | None,
    store: TokenStore,
    authorizer: Authorizer | Callable[[], Authorizer],
) -> Any:
    """The SDK's httpx auth for `url`: it acts only when the server answers 401/403."""
    settings = settings or OAuthSettings()
    storage = _ServerStorage(store, url)
    if store.get(url).get("name") != name:
        store._data.setdefault(url, {})["name"] = name
    if settings.grant == "identity_assertion":
        return _identity_assertion_provider(url, settings, storage)
    if settings.grant == "client_credentials":
        from mcp.client.auth.extensions.client_credentials import (
            ClientCredentialsOAuthProvider,
            PrivateKeyJWTOAuthProvider,
            SignedJWTParameters,
        )

        if not settings.client_id:
            raise ValueError("client credentials need a client id")
        if settings.private_key:
            return PrivateKeyJWTOAuthProvider(
                server_url=url, storage=storage, client_id=settings.client_id,
                assertion_provider=SignedJWTParameters(
                    issuer=settings.client_id, subject=settings.client_id,
                    signing_algorithm=settings.signing_algorithm,
                    signing_key=settings.private_key,
                ).create_assertion_provider(),
                scope=settings.scopes,
            )
        if not settings.client_secret:
            raise ValueError("client credentials need a client secret or a private key")
        return ClientCredentialsOAuthProvider(
            server_url=url, storage=storage, client_id=settings.client_id,
            client_secret=settings.client_secret,
            token_endpoint_auth_method=settings.token_endpoint_auth_method  # type: ignore[arg-type]
            or "client_secret_basic",
            scope=settings.scopes,
        )
    from mcp.client.auth import OAuthClientProvider
    from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata

    chosen = authorizer if isinstance(authorizer, Authorizer) else authorizer()
    registered = (store.get(url).get("client") or {}).get("redirect_uris") or []
    if isinstance(chosen, LoopbackAuthorizer) and registered and chosen.fixed_port is None:
        # A registration names its redirect URI: listen on the same port, or register again.
        port = urlparse(registered[0]).port
        if urlparse(registered[0]).hostname != "127.0.0.1" or not port or not chosen.use_port(
            port
        ):
            store._data.get(url, {}).pop("client", None)
    elif (isinstance(chosen, (LoopbackAuthorizer, PasteAuthorizer)) and registered
          and registered[0] != chosen.redirect_uri and not settings.client_id):
        store._data.get(url, {}).pop("client", None)  # registered for another redirect URI
    stored_id = (store.get(url).get("client") or {}).get("client_id")
    if settings.client_id and stored_id != settings.client_id:  # pre-registered: it wins
        store._data.setdefault(url, {})["client"] = OAuthClientInformationFull(
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            redirect_uris=[chosen.redirect_uri],  # type: ignore[list-item]
            token_endpoint_auth_method=settings.token_endpoint_auth_method  # type: ignore[arg-type]
            or ("client_secret_basic" if settings.client_secret else "none"),
        ).model_dump(mode="json", exclude_none=True)
    return _with_stored_expiry(OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name=CLIENT_NAME,
            redirect_uris=[chosen.redirect_uri],  # type: ignore[list-item]
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            scope=settings.scopes,
        ),
        storage=storage,
        redirect_handler=chosen.redirect,
        callback_handler=chosen.callback,
        client_metadata_url=settings.client_metadata_url,
    ), store, url)


def _with_stored_expiry(provider: Any, store: TokenStore, url: str) -> Any:
    """The SDK loads stored tokens without their expiry, so an expired one would be sent
    (and answered 401) instead of refreshed: give it the stored expiry."""
    load = provider._initialize

    async def initialize() -> None:
        await load()
        expires_at = store.get(url).get("expires_at")
        if provider.context.current_tokens is not None and expires_at:
            provider.context.token_expiry_time = expires_at

    provider._initialize = initialize
    return provider




class OAuth:
    """A host's OAuth: one token store and a way to reach the user, for every server."""

    def __init__(
        self,
        store: TokenStore | None = None,
        authorizer: Callable[[], Authorizer] | None = None,
        paste: bool | None = None,
        redirect_port: int | None = None,
        ask_redirect: Callable[[str], Any] | None = None,
        on_main: Callable[[Callable[[], Any]], Any] | None = None,
        show: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store if store is not None else TokenStore()
        self.show = show or show_link
        """How the loopback flow's link reaches the user (a cell link, a terminal line)."""
        self.authorizer = authorizer
        """Makes the authorizer for every server (tests); None: chosen per server."""
        self.paste = paste
        """Paste the redirected address (True), catch it on the loopback (False), or
        guess from the environment (None, `remote_kernel`); a server's settings win."""
        self.redirect_port = redirect_port
        """A fixed loopback port for every server (a server's settings win)."""
        self.ask_redirect = ask_redirect
        """Shows the link and returns the pasted address (the notebook's prompt)."""
        self.on_main = on_main
        """Runs a function on the thread waiting for the connect (shows the link there)."""

    def _authorizer(self, settings: OAuthSettings | None) -> Authorizer:
        if self.authorizer is not None:
            return self.authorizer()
        settings = settings or OAuthSettings()
        port = settings.redirect_port or self.redirect_port
        paste = settings.paste if settings.paste is not None else self.paste
        if paste is None:
            paste = remote_kernel()
        if paste:
            ask = self.ask_redirect or _ask_redirect_at_stdin
            if self.on_main is not None:
                on_main, plain = self.on_main, ask
                ask = lambda url: on_main(lambda: plain(url))  # noqa: E731
            return PasteAuthorizer(ask, port)
        show: Callable[[str], Any] = self.show
        if self.on_main is not None:
            on_main, plain_show = self.on_main, self.show

            async def show(url: str) -> None:
                from .sessions import NobodyWaiting

                try:
                    await on_main(lambda: plain_show(url))
                except NobodyWaiting:
                    plain_show(url)

        return LoopbackAuthorizer(show=show, port=port)

    def for_session(self, session: Any) -> Any:
        """The SDK's httpx auth for a remote session (`SessionManager(oauth=...)`)."""
        spec = session.spec
        authorizer = self._authorizer(spec.oauth)
        redirect, callback = authorizer.redirect, authorizer.callback

        async def ask_user(url: str) -> None:
            # The connect waits for the user's consent, not just the server.
            session.awaiting_user = getattr(authorizer, "timeout", 300) + 10
            await redirect(url)

        async def wait_for_user() -> Any:
            try:
                return await callback()
            finally:
                session.awaiting_user = 0.0

        authorizer.redirect, authorizer.callback = ask_user, wait_for_user  # type: ignore[method-assign]
        provider = provider_for(spec.url, session.name, spec.oauth, self.store, authorizer)
        _PROVIDERS[session.marker] = provider
        return provider

    def summary(self) -> list[dict[str, Any]]:
        return token_summary(self.store)

    def logout(self, name_or_url: str) -> bool:
        """Forget a server's tokens and registration (by session name or URL)."""
        for key in list(self.store._data):
            if key == name_or_url or self.store.get(key).get("name") == name_or_url:
                return self.store.forget(key)
        return False


_FIX = (
    "pre-register a client and pass --client-id (and --client-secret), "
    "or pass a token with --header 'Authorization: Bearer $TOKEN'"
)


_PROVIDERS: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
"""Each session's provider (by session marker), to tell what discovery found."""


def explain_failure(exc: BaseException, url: str, marker: str = "") -> str | None:
    """One line for a failed authorization, naming the fix; None if it was not one."""
    from mcp.client.auth.exceptions import OAuthFlowError

    if not isinstance(exc, (OAuthFlowError, AuthorizationFailed)):
        return None
    provider = _PROVIDERS.get(marker)
    context = getattr(provider, "context", None)
    if context is not None and not (
        context.protected_resource_metadata or context.oauth_metadata
    ):
        return (
            f"{url} answered HTTP 401 Unauthorized: it wants credentials, e.g. "
            "--header 'Authorization: Bearer $TOKEN' (it offers no OAuth metadata)"
        )
    from mcp.client.auth.exceptions import OAuthRegistrationError, OAuthTokenError

    text = " ".join(str(exc).split())[:200]
    if isinstance(exc, AuthorizationFailed):
        return f"{url} needs authorization, which did not complete: {text}"
    if isinstance(exc, OAuthRegistrationError):
        return (
            f"{url} answered HTTP 401 (it wants OAuth) and this client could not register "
            f"with its authorization server ({text}): {_FIX}"
        )
    if isinstance(exc, OAuthTokenError):
        return f"{url} wants OAuth; the authorization server refused the token request: {text}"
    if isinstance(exc, OAuthFlowError):
        return f"{url} wants OAuth, which failed: {text}: {_FIX}"
    return None


def _ask_redirect_at_stdin(url: str) -> str:
    print(f"Authorize in your browser: {url}", file=sys.stderr)
    return input("Paste the address your browser was redirected to: ")


def show_link(url: str) -> None:
    """The authorization link where the user is: a link in the running cell (a kernel),
    else a line on stderr (terminal IPython, scripts)."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None and getattr(shell, "kernel", None) is not None:
        from html import escape

        from IPython.display import HTML, display

        display(HTML(
            f'<a href="{escape(url)}" target="_blank" rel="noopener">Authorize this server'
            "</a> (opens the server's sign-in page; the connect finishes when you consent)"
        ))
    else:
        print(f"Authorize in your browser: {url}", file=sys.stderr)


def format_summary(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No server holds OAuth tokens."
    return "\n".join(
        f"{r['server']}: {r['url']}  scopes: {r['scopes'] or '-'}  expires: {r['expires']}"
        + ("  (refreshable)" if r["refreshable"] else "")
        for r in rows
    )


def _identity_assertion_provider(url: str, settings: OAuthSettings, storage: Any) -> Any:
    """SEP-990: trade the user's ID token for an ID-JAG at the identity provider (RFC 8693
    token exchange), which the SDK's provider presents to the authorization server."""
    from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider

    missing = [k for k in ("client_id", "client_secret", "issuer", "idp_token_endpoint",
                           "id_token") if not getattr(settings, k)]
    if missing:
        raise ValueError(f"identity assertion needs {', '.join(missing)}")

    async def id_jag(audience: str, resource: str) -> str:
        import httpx2

        async with httpx2.AsyncClient() as http:
            answer = await http.post(settings.idp_token_endpoint or "", data={
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "requested_token_type": "urn:ietf:params:oauth:token-type:id-jag",
                "audience": audience,
                "resource": resource,
                "subject_token": settings.id_token or "",
                "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
                **({"client_id": settings.idp_client_id} if settings.idp_client_id else {}),
            })
        if answer.status_code != 200:
            raise AuthorizationFailed(
                f"the identity provider refused the token exchange (HTTP {answer.status_code})"
            )
        return answer.json()["access_token"]

    return IdentityAssertionOAuthProvider(
        server_url=url, storage=storage, client_id=settings.client_id or "",
        client_secret=settings.client_secret or "", issuer=settings.issuer or "",
        assertion_provider=id_jag, scope=settings.scopes,
        token_endpoint_auth_method=settings.token_endpoint_auth_method  # type: ignore[arg-type]
        or "client_secret_basic",
    )
