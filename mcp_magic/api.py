"""The same host without magics, for scripts, tests and papermill.

    from mcp_magic import Host

    with Host() as host:
        host.connect("data", builtin=True)
        revenue = host.call("data.query_db", sql="select count(*) as n from orders")
        result = host.agent("Which region grew most?", model="openrouter:openai/gpt-4o-mini")
        print(result.text, result.variables)
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

from .agent.driver import run_agent
from .agent.events import ApprovalRequest, Decision, Event
from .agent.loop import Agent, AgentOptions, RunResult, agent_for, interpolate
from .agent.sampling import model_sampler
from .display.asking import approve_call, approve_code
from .host import config
from .host.arguments import missing_message, parse_target
from .host.auth import OAuth, OAuthSettings
from .host.client_requests import ClientRequests, ElicitHandler, SamplingRequest
from .host.sessions import McpError, Session, SessionManager


class ToolError(McpError):
    """A tool answered with an error."""


class Host:
    """Sessions, tool calls and the agent loop as plain Python calls."""

    def __init__(
        self,
        connect_timeout: float = 60.0,
        namespace: dict | None = None,
        *,
        elicit: ElicitHandler | None = None,
        roots: list[str] | None = None,
        oauth: OAuth | None = None,
        sample: Callable[[SamplingRequest], Any] | None = None,
        sampling_model: str | None = None,
        approve_sampling: Callable[[SamplingRequest], bool] | None = None,
    ) -> None:
        """`elicit(request)` answers a server's questions (a dict of values to accept,
        None to decline; without it they are declined); `roots` are the directories
        servers are told they may use (default: a local server's own directories from
        its command line, else the working directory; none for remote servers; `[]`:
        none offered); `oauth` holds the
        token store and how the user is sent to authorize (default: a 0600 file under
        the config directory, a link on stderr and a loopback listener).

        Servers' sampling requests are answered by `sample(request)` (a
        `CreateMessageResult`) or by the model `sampling_model` ("provider:model"),
        after `approve_sampling(request)` says yes if given; else they are declined.
        Handlers run on the thread that made the call."""
        self.oauth = oauth or OAuth()
        if sample is None and sampling_model:
            sample = model_sampler(lambda: sampling_model)
        self.manager = SessionManager(
            connect_timeout=connect_timeout,
            client_requests=ClientRequests(
                elicit=elicit, roots=roots, sample=sample, approve=approve_sampling
            ),
            oauth=self.oauth.for_session,
        )
        if self.oauth.on_main is None:
            self.oauth.on_main = self.manager.on_main
        self.namespace: dict[str, Any] = namespace if namespace is not None else {}
        self._agent: Agent | None = None

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- sessions --------------------------------------------------------------

    def connect(
        self,
        name: str,
        command: list[str] | str | None = None,
        *,
        url: str | None = None,
        headers: dict[str, str] | None = None,
        transport: str | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        builtin: bool = False,
        db: str | None = None,
        root: str | None = None,
        allow_writes: bool = False,
        client_id: str | None = None,
        client_secret: str | None = None,
        scopes: str | None = None,
        client_credentials: bool = False,
        oauth: OAuthSettings | None = None,
    ) -> Session:
        """Connect one server: a stdio `command`, a remote `url`, or the built-in server.

        A remote server that answers 401 starts OAuth; `client_id`/`client_secret` name
        a pre-registered client, and `client_credentials=True` authorizes as that client
        with no user."""
        config.check_name(name)
        if builtin:
            spec: config.ServerSpec = config.builtin_spec(db, root, allow_writes)
        elif url is not None:
            header_lines = [f"{k}: {v}" for k, v in (headers or {}).items()]
            if oauth is None and (client_id or scopes or client_credentials):
                oauth = OAuthSettings(
                    client_id=client_id, client_secret=client_secret, scopes=scopes,
                    grant="client_credentials" if client_credentials else "authorization_code",
                )
            spec = config.http_spec(url, header_lines, transport, oauth)
        elif command:
            if isinstance(command, str):  # "uvx mcp-server-time": split like a shell
                command = config.split_command(command)
            env_words = [f"{k}={v}" for k, v in (env or {}).items()]
            spec = config.stdio_spec(list(command), env_words, cwd)
        else:
            raise config.ConfigError("connect needs a command, a url, or builtin=True")
        return self.manager.connect(name, spec)

    def connect_config(self, path: str, names: list[str] | None = None) -> dict[str, Any]:
        """Servers from an `mcpServers` file; failures are returned, not raised."""
        specs = config.load_config_file(path)
        chosen = {n: s for n, s in specs.items() if not names or n in names}
        ready = {n: s for n, s in chosen.items() if not isinstance(s, Exception)}
        outcomes: dict[str, Any] = {n: s for n, s in chosen.items() if isinstance(s, Exception)}
        outcomes.update(self.manager.connect_many(ready) if ready else {})
        return outcomes

    def tools(self, name: str) -> dict[str, Any]:
        return self.manager.tools(name)

    def auth(self) -> list[dict[str, Any]]:
        """Servers holding OAuth tokens: scopes and expiry, never the tokens."""
        return self.oauth.summary()

    def logout(self, name: str) -> bool:
        """Forget a server's OAuth tokens; True if there were any."""
        return self.oauth.logout(name)

    def disconnect(self, name: str | None = None) -> None:
        if name is None:
            self.manager.disconnect_all()
        else:
            self.manager.disconnect(name)

    def close(self) -> None:
        if self._agent is not None and self.manager._loop is not None:
            with contextlib.suppress(Exception):
                self.manager.run(self._agent.provider.aclose(), timeout=5)
        self.manager.close()

    # -- calls -------------------------------------------------------------------

    def call(self, target: str, arguments: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Call `server.tool`: a DataFrame for tables, else JSON or text; ToolError on error."""
        from .tables.results import interpret

        server, tool = parse_target(target)
        definition = self.manager.tool(server, tool)
        arguments = {**(arguments or {}), **kwargs}
        missing = missing_message(target, arguments, getattr(definition, "input_schema", None))
        if missing:
            raise ToolError(missing)  # checked here, as %mcp call does: nothing is sent
        result = self.manager.call_tool(server, tool, arguments)
        outcome = interpret(result, tool, getattr(definition, "output_schema", None))
        if outcome.error is not None:
            raise ToolError(f"{target}: {outcome.error}")
        return outcome.value

    def call_pages(self, target: str, page_rows: int = 100_000,
                   progress: Callable[..., None] | None = None, **arguments: Any) -> Any:
        """Every row of a paged table tool (`limit=`/`offset=`, as `query_db`), one
        page of `page_rows` per call; `progress(rows, None, message)` after each page."""
        from .host.paging import call_pages

        return call_pages(lambda page: self.call(target, page), arguments, page_rows, progress)

    # -- the agent -----------------------------------------------------------------

    def agent(
        self,
        prompt: str,
        model: str | None = None,
        *,
        base_url: str | None = None,
        new: bool = False,
        show: Callable[[Event], None] | None = None,
        approve: Callable[[ApprovalRequest], Decision] = approve_call,
        **options: Any,
    ) -> RunResult:
        """Run the tool-calling loop once. `options` are AgentOptions fields, e.g.
        `max_steps`, `idle_timeout` (seconds a reply may go without data, default 60)
        and `run_timeout` (seconds for the whole run, default 600).

        `code=True` is code mode: the model runs Python in `self.namespace`, where
        servers are objects whose tools are functions; each block asks first (`asking.approve_code`:
        widgets in Jupyter, else an input prompt) unless `code_approval=False`.

        `model` defaults to `MCP_MAGIC_MODEL` (environment or `.env`). By default the
        answer and the tool calls are printed as they happen; pass
        `show=lambda event: None` to stay quiet, or your own function to get each event
        (`mcp_magic.agent.events`: text, tool calls started and finished, an
        `ApprovalRequest` before `approve` is asked and an `ApprovalAnswered` after).
        `{name}` in the prompt fills in from `self.namespace`, where table results are
        bound too.
        """
        from .agent.providers import ProviderError, default_model, resolve
        from .display.agent_view import AgentView

        model = model or default_model()
        if not model:
            raise ProviderError(
                "no model: pass model='openrouter:openai/gpt-4o-mini' or export MCP_MAGIC_MODEL"
            )
        agent_options = AgentOptions(**options)
        code_runner = None
        if agent_options.code:  # code mode: the model's code runs here, in `self.namespace`
            from .agent.driver import run_code_request

            def code_runner(request: Any) -> Any:
                return run_code_request(request, self.namespace, approve_code)

        self._agent = agent_for(
            self._agent, self.manager, resolve(model, base_url=base_url), self.namespace
        )
        if new:
            self._agent.reset()
        view = None
        if show is None:
            view = AgentView(live=False, terminal=True)
            show = view.handle
        try:
            return run_agent(
                self.manager,
                self._agent,
                interpolate(prompt, self.namespace),
                agent_options,
                show,
                approve,
                code=code_runner,
            )
        finally:
            if view is not None:
                view.close()
                sys.stdout.write("\n")

    def log(self, run: int | None = None) -> Any:
        """Every agent run so far (or run `run`) as a DataFrame, one row per step."""
        runs = self._agent.log if self._agent is not None else None
        if runs is None or not runs.runs:
            raise LookupError("no agent runs yet")
        return runs.frame(runs.get(run).id if run else None)

    def export(self, run: int | None = None) -> str:
        """The last agent run (or run `run`) as code that needs no model: `%mcp call`
        lines and the code blocks that ran, for a notebook cell or an `.ipy` file."""
        from .agent.export import export_run

        runs = self._agent.log if self._agent is not None else None
        if runs is None or not runs.runs:
            raise LookupError("no agent runs yet")

        def schema(server: str, tool: str) -> Any:
            session = self.manager.sessions.get(server)
            definition = session.tools.get(tool) if session is not None else None
            return getattr(definition, "input_schema", None)

        return export_run(runs.get(run), schema)
