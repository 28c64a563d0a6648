// The widget module of a tool's view (mcp_magic/apps/widget.py). It stays small because it
// is part of the widget's state, which a notebook may save: the bridge bundle (view.js,
// ~650 kB) and the view's HTML come from the kernel on demand. Without a kernel (a saved
// notebook, an HTML export) it shows one line saying the view exists.

const BUNDLE_KEY = "__mcpMagicAppViewBundle__BUNDLE_HASH__";
const WAIT_MS = 30000;

function fromKernel(model, request, wanted) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      model.off("msg:custom", onMessage);
      reject(new Error("no answer from the kernel"));
    }, WAIT_MS);
    const onMessage = (msg, buffers) => {
      if (!msg || msg.type !== wanted) return;
      clearTimeout(timer);
      model.off("msg:custom", onMessage);
      resolve({ msg, buffers: buffers || [] });
    };
    model.on("msg:custom", onMessage);
    model.send(request);
  });
}

function bundle(model) {
  if (!globalThis[BUNDLE_KEY]) {
    globalThis[BUNDLE_KEY] = fromKernel(model, { type: "load", bundle: true }, "bundle")
      .then(({ buffers }) => {
        const source = new Blob([buffers[0]], { type: "text/javascript" });
        return import(URL.createObjectURL(source));
      })
      .catch((error) => {
        delete globalThis[BUNDLE_KEY]; // a later view (a live kernel) tries again
        throw error;
      });
  }
  return globalThis[BUNDLE_KEY];
}

async function render({ model, el }) {
  const line = document.createElement("div");
  line.style.cssText = "font-size:12px;color:var(--jp-ui-font-color2, #777)";
  line.textContent = `▣ loading the view of ${model.get("server")}.${model.get("tool")}…`;
  el.appendChild(line);
  try {
    const [module, page] = await Promise.all([
      bundle(model),
      fromKernel(model, { type: "load", html: true }, "html"),
    ]);
    if (typeof page.msg.html !== "string") throw new Error(page.msg.error || "no view");
    line.remove();
    return module.render({ model, el, html: page.msg.html });
  } catch (error) {
    line.textContent =
      `▣ ${model.get("server")}.${model.get("tool")} has a view (${model.get("uri")}),` +
      ` shown live while its kernel runs (${error.message})`;
    return () => {};
  }
}

export default { render };
