// The page side of a tool's view: an anywidget module that renders the view's HTML in a
// sandboxed iframe and speaks the MCP Apps protocol with it through the official ext-apps
// AppBridge. What needs the MCP server (tools/call, resources/read) goes to the kernel as
// a widget message and comes back as one (mcp_magic/apps/bridge.py).
//
// Bundled with its dependencies into ../static/view.js by scripts/build_app_view.sh. The
// widget's own module is ../static/loader.js: it fetches this bundle and the view's HTML
// from the kernel, so neither is kept in a saved notebook's widget state.

import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";

const MIN_HEIGHT = 40;
const MAX_HEIGHT = 1600;
const START_HEIGHT = 320;
const FLOOD_WINDOW_MS = 1000;
const FLOOD_LIMIT = 200; // messages from one view per window; the rest are dropped
const START_TIMEOUT_MS = 15000; // a view that never initializes gets a note
const TEARDOWN_TIMEOUT_MS = 500;
const LINK_SCHEMES = ["http:", "https:", "mailto:"];

function jupyterTheme() {
  return document.body.dataset.jpThemeLight === "false" ? "dark" : "light";
}

function styleVariables() {
  const css = getComputedStyle(document.body);
  const pick = (name) => css.getPropertyValue(name).trim() || undefined;
  return {
    "--color-background-primary": pick("--jp-layout-color0"),
    "--color-background-secondary": pick("--jp-layout-color1"),
    "--color-background-tertiary": pick("--jp-layout-color2"),
    "--color-text-primary": pick("--jp-ui-font-color0") || pick("--jp-content-font-color0"),
    "--color-text-secondary": pick("--jp-ui-font-color1"),
    "--color-text-tertiary": pick("--jp-ui-font-color2"),
    "--color-border-primary": pick("--jp-border-color1"),
    "--color-border-secondary": pick("--jp-border-color2"),
    "--font-sans": pick("--jp-ui-font-family"),
    "--font-mono": pick("--jp-code-font-family"),
  };
}

function themeContext() {
  return { theme: jupyterTheme(), styles: { variables: styleVariables() } };
}

function button(label, onclick) {
  const b = document.createElement("button");
  b.textContent = label;
  b.className = "jupyter-button";
  b.style.marginLeft = "6px";
  b.onclick = onclick;
  return b;
}

export function render({ model, el, html }) {
  const viewId = Math.random().toString(36).slice(2);
  let next = 1;
  const waiting = new Map(); // request id -> {resolve, reject}
  const cleanups = [];

  const root = document.createElement("div");
  root.className = "mcp-magic-app";
  const frame = document.createElement("iframe");
  // Scripts only: no allow-same-origin, so the view has an opaque origin and cannot
  // reach the notebook page, its cookies or its storage.
  frame.setAttribute("sandbox", "allow-scripts");
  frame.setAttribute("referrerpolicy", "no-referrer");
  frame.setAttribute("title", `view of ${model.get("server")}.${model.get("tool")}`);
  const border = model.get("prefers_border") === false ? "none" : "1px solid var(--jp-border-color2, #ddd)";
  frame.style.cssText = `width:100%;height:${START_HEIGHT}px;border:${border};border-radius:4px;display:block;background:transparent`;
  const asks = document.createElement("div");
  asks.className = "mcp-magic-app-asks";
  const note = document.createElement("div");
  note.className = "mcp-magic-app-note";
  note.style.cssText = "font-size:12px;color:var(--jp-warn-color0, #b80);min-height:0";
  root.append(frame, asks, note);
  el.appendChild(root);

  const showNote = (text) => {
    note.textContent = text ? `⚠ ${text}` : "";
  };
  const tellKernel = (text) => {
    showNote(text);
    model.send({ type: "note", text });
  };
  showNote(model.get("note"));
  const onNote = () => showNote(model.get("note"));
  model.on("change:note", onNote);
  cleanups.push(() => model.off("change:note", onNote));

  // --- to the kernel and back
  const kernel = (method, params) =>
    new Promise((resolve, reject) => {
      const id = `${viewId}:${next++}`;
      waiting.set(id, { resolve, reject });
      model.send({ type: "request", id, method, params });
    });

  const ask = (text, buttons) => {
    const line = document.createElement("div");
    line.className = "mcp-magic-app-ask";
    line.style.cssText = "padding:4px 0;font-size:13px";
    const words = document.createElement("span");
    words.textContent = text;
    line.append(words);
    for (const [label, action] of buttons) {
      line.append(
        button(label, () => {
          line.remove();
          action();
        }),
      );
    }
    asks.append(line);
    return line;
  };

  const onCustom = (msg) => {
    if (!msg || typeof msg.id !== "string" || !msg.id.startsWith(`${viewId}:`)) return;
    if (msg.type === "ask") {
      ask(String(msg.text), [
        ["Allow", () => model.send({ type: "approval", id: msg.id, allow: true })],
        ["Deny", () => model.send({ type: "approval", id: msg.id, allow: false })],
      ]);
    } else if (msg.type === "response") {
      const entry = waiting.get(msg.id);
      if (!entry) return;
      waiting.delete(msg.id);
      if (msg.error) {
        const error = new Error(String(msg.error.message));
        error.code = msg.error.code;
        entry.reject(error);
      } else entry.resolve(msg.result);
    }
  };
  model.on("msg:custom", onCustom);
  cleanups.push(() => model.off("msg:custom", onCustom));

  // --- flood guard: runs before the transport's listener (capture) and drops the excess
  let windowStart = 0;
  let count = 0;
  let flooded = false;
  const guard = (event) => {
    if (event.source !== frame.contentWindow) return;
    const now = Date.now();
    if (now - windowStart > FLOOD_WINDOW_MS) {
      windowStart = now;
      count = 0;
    }
    count += 1;
    if (count > FLOOD_LIMIT) {
      event.stopImmediatePropagation();
      const data = event.data;
      if (data && typeof data === "object" && data.method && data.id !== undefined) {
        // A request is answered, so the view does not wait for ever.
        const error = { code: -32000, message: "too many messages; try again later" };
        frame.contentWindow.postMessage({ jsonrpc: "2.0", id: data.id, error }, "*");
      }
      if (!flooded) {
        flooded = true;
        tellKernel(`the view sent over ${FLOOD_LIMIT} messages in a second; the rest were dropped`);
      }
    }
  };
  window.addEventListener("message", guard, true);
  cleanups.push(() => window.removeEventListener("message", guard, true));

  // --- the bridge
  const context = {
    ...themeContext(),
    displayMode: "inline",
    availableDisplayModes: ["inline"],
    containerDimensions: { maxHeight: MAX_HEIGHT },
    locale: navigator.language,
    timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone,
    platform: "web",
    userAgent: "mcp-magic",
  };
  const info = model.get("tool_info");
  if (info && info.name) context.toolInfo = { tool: info };
  const bridge = new AppBridge(
    null,
    { name: "mcp-magic", version: "0.1.0" },
    { openLinks: {}, serverTools: {}, serverResources: {}, logging: {} },
    { hostContext: context },
  );
  let started = false;
  bridge.oncalltool = (params) => kernel("tools/call", params);
  bridge.onreadresource = (params) => kernel("resources/read", params);
  bridge.onopenlink = ({ url }) =>
    new Promise((resolve) => {
      let parsed = null;
      try {
        parsed = new URL(String(url));
      } catch (e) {
        parsed = null;
      }
      if (!parsed || !LINK_SCHEMES.includes(parsed.protocol)) {
        tellKernel(`the view asked to open a link that is not http(s): ${String(url).slice(0, 80)}`);
        resolve({ isError: true });
        return;
      }
      ask(`The view wants to open ${parsed.href}`, [
        [
          "Open",
          () => {
            window.open(parsed.href, "_blank", "noopener,noreferrer");
            resolve({});
          },
        ],
        ["Cancel", () => resolve({ isError: true })],
      ]);
    });
  bridge.onsizechange = ({ height }) => {
    if (typeof height !== "number" || !Number.isFinite(height)) return;
    const shown = Math.max(MIN_HEIGHT, Math.min(MAX_HEIGHT, Math.ceil(height)));
    if (height > MAX_HEIGHT) {
      tellKernel(`the view asked for ${Math.round(height)} px of height; it has ${MAX_HEIGHT}`);
    }
    frame.style.height = `${shown}px`;
  };
  bridge.onmessage = async () => ({ isError: true }); // no chat to post into here
  bridge.onupdatemodelcontext = async () => ({});
  bridge.onloggingmessage = () => {};
  bridge.onrequestdisplaymode = async () => ({ mode: "inline" });
  bridge.onrequestteardown = () => {};
  bridge.onerror = (error) => {
    tellKernel(`the view sent something the bridge could not take: ${String(error && error.message || error).slice(0, 160)}`);
  };
  bridge.oninitialized = () => {
    started = true;
    bridge.sendToolInput({ arguments: model.get("tool_input") || {} }).catch(() => {});
    const result = model.get("tool_result");
    if (result && Object.keys(result).length) bridge.sendToolResult(result).catch(() => {});
  };
  const startTimer = setTimeout(() => {
    if (!started) tellKernel("the view did not start (it never finished ui/initialize)");
  }, START_TIMEOUT_MS);
  cleanups.push(() => clearTimeout(startTimer));

  // --- the theme follows JupyterLab's
  let theme = jupyterTheme();
  const observer = new MutationObserver(() => {
    const now = jupyterTheme();
    if (now === theme) return;
    theme = now;
    // Let the new theme's CSS variables settle before they are read.
    requestAnimationFrame(() => {
      if (started) bridge.sendHostContextChange(themeContext());
    });
  });
  observer.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });
  cleanups.push(() => observer.disconnect());

  const transport = new PostMessageTransport(frame.contentWindow, frame.contentWindow);
  bridge
    .connect(transport)
    .then(() => {
      frame.srcdoc = html;
    })
    .catch((error) => tellKernel(`the view could not be connected: ${error}`));

  return () => {
    for (const cleanup of cleanups.splice(0)) {
      try {
        cleanup();
      } catch (e) {
        /* already gone */
      }
    }
    for (const entry of waiting.values()) entry.reject(new Error("the view was closed"));
    waiting.clear();
    const gone = () => {
      bridge.close().catch(() => {});
      frame.remove();
    };
    // A view gets ui/resource-teardown while its frame is still in the page (the
    // widget closed from the kernel); when JupyterLab clears an output it detaches the
    // frame first, its document is already unloaded, and there is no one to tell.
    if (!started || !frame.isConnected) return gone();
    Promise.race([
      bridge.teardownResource({}),
      new Promise((resolve) => setTimeout(resolve, TEARDOWN_TIMEOUT_MS)),
    ])
      .catch(() => {})
      .finally(gone);
  };
}

