// Building the page: every text goes in as text (textContent), never as markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A table of ``rows`` (arrays of cells: text or nodes) under ``head``. */
export function table(head, rows, attrs = {}) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}

export function link(href, text) {
  return h("a", { href }, text);
}

/** A form whose submit calls ``act(values)``; its errors are shown in the form. */
export function form(fields, label, act, attrs = {}) {
  const error = h("p", { class: "error", role: "alert" });
  const el = h("form", attrs, fields, h("button", { type: "submit" }, label), error);
  el.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const button = el.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await act(Object.fromEntries(new FormData(el).entries()), el);
    } catch (err) {
      error.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

export function input(name, label, attrs = {}) {
  return h("label", {}, label, h("input", { name, ...attrs }));
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

export function number(n, digits = 0) {
  return n === null || n === undefined ? "" : Number(n).toLocaleString(undefined, {
    maximumFractionDigits: digits,
  });
}

export function verdictBadge(passed) {
  const [text, cls] = passed === true ? ["passed", "ok"] : passed === false ? ["failed", "bad"]
    : ["not judged", "unknown"];
  return h("span", { class: `badge ${cls}` }, text);
}

/** A run's verdict: its state while it runs; failed unless it finished with every criterion
 * passed; "no criteria" when there was nothing to judge. */
export function runVerdict(run) {
  if (run.outcome === null) return h("span", { class: "badge unknown" }, run.state);
  if (run.outcome !== "finished") return verdictBadge(false);
  if (!run.criteria.length) return h("span", { class: "badge unknown" }, "no criteria");
  return verdictBadge(run.criteria.every((c) => c.passed === true));
}

export function notice(message, cls = "error") {
  return h("p", { class: cls, role: "alert" }, message);
}
