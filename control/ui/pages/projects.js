// Projects (by the caller's groups), and a project: its plans with their files, its collections.

import { all, del, get, post, put } from "../api.js";
import { form, h, input, link, notice, number, table, when } from "../dom.js";

export async function projectsPage(view) {
  const [me, projects] = await Promise.all([get("/api/me"), all("/api/projects")]);
  const groups = h("select", { name: "group", required: true },
    (me.is_admin && !me.groups.length ? ["admins"] : me.groups).map((g) => h("option", {}, g)));
  view.append(
    h("h1", {}, "Projects"),
    projects.length
      ? h("ul", { class: "cards" }, projects.map((p) => h("li", { class: "card" },
        link(`#/projects/${p.id}`, p.name), h("span", { class: "muted" }, ` group ${p.group}`))))
      : h("p", { class: "muted" }, "No project yet."),
    h("h2", {}, "New project"),
    form([input("name", "Name", { required: true, maxlength: 100 }),
      h("label", {}, "Group", groups)], "Create project", async (v) => {
      const p = await post("/api/projects", v);
      location.hash = `#/projects/${p.id}`;
    }, { id: "new-project" }),
  );
}

export async function projectPage(view, id) {
  const [project, plans, collections] = await Promise.all([
    get(`/api/projects/${id}`), all(`/api/projects/${id}/plans`),
    all(`/api/projects/${id}/collections`),
  ]);
  const reload = () => { view.replaceChildren(); return projectPage(view, id); };
  view.append(
    h("p", { class: "crumbs" }, link("#/", "Projects"), " / ", project.name),
    h("h1", {}, project.name, h("span", { class: "muted" }, ` group ${project.group}`)),
    h("section", { id: "collections" },
      h("h2", {}, "Collections"),
      collections.length
        ? table(["Collection", "Plans", "Engines", "Virtual users"], collections.map((c) => [
          link(`#/collections/${c.id}`, c.name), c.plans.map((p) => p.name).join(", "),
          number(c.engines), number(c.virtual_users)]))
        : h("p", { class: "muted" }, "No collection yet."),
      form([input("name", "Name", { required: true, maxlength: 100 })], "Create collection",
        async (v) => {
          const c = await post(`/api/projects/${id}/collections`, { name: v.name });
          location.hash = `#/collections/${c.id}`;
        }, { id: "new-collection", class: "inline" })),
    h("section", { id: "plans" },
      h("h2", {}, "Plans"),
      plans.map((p) => planCard(p, reload)),
      form([input("name", "Name", { required: true, maxlength: 100 })], "Create plan",
        async (v) => { await post(`/api/projects/${id}/plans`, v); await reload(); },
        { id: "new-plan", class: "inline" })),
  );
}

function planCard(plan, reload) {
  const status = h("p", { class: "status", role: "status" });
  const picker = h("input", { type: "file", name: "file", multiple: true });
  const upload = async (e) => {
    e.preventDefault();
    status.textContent = "";
    for (const file of picker.files) {
      try {
        const out = await put(`/api/plans/${plan.id}/files/${encodeURIComponent(file.name)}`,
          file, "application/octet-stream");
        status.append(h("span", { class: "ok" }, `${out.name}: accepted (${out.kind}, ` +
          `${number(out.size_bytes)} bytes). `));
      } catch (err) {
        status.append(h("span", { class: "error" }, `${file.name}: ${err.message} `));
        return;
      }
    }
    await reload();
  };
  const remove = (name) => async () => {
    if (!confirm(`Delete ${name}?`)) return;
    try {
      await del(`/api/plans/${plan.id}/files/${encodeURIComponent(name)}`);
      await reload();
    } catch (err) {
      status.replaceChildren(notice(err.message));
    }
  };
  const files = plan.files.map((f) => [
    h("a", { href: `/api/plans/${plan.id}/files/${encodeURIComponent(f.name)}`, download: f.name },
      f.name),
    f.kind, number(f.size_bytes), when(f.uploaded_at),
    h("button", { type: "button", class: "link", onclick: remove(f.name) }, "Delete"),
  ]);
  return h("article", { class: "card plan", dataset: { plan: plan.id } },
    h("h3", {}, plan.name, h("span", { class: "muted" }, ` plan ${plan.id}`)),
    files.length ? table(["File", "Kind", "Bytes", "Uploaded", ""], files)
      : h("p", { class: "muted" }, "No file yet: upload a JMX (and its CSV data)."),
    h("form", { class: "inline upload", onsubmit: upload }, picker,
      h("button", { type: "submit" }, "Upload")),
    status);
}
