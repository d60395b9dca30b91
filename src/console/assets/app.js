// argot console: the page's script. Polls /api/state every second and
// renders the parties, the proposals waiting for this party's decision and
// the jobs. Text from the API is set with textContent only (never parsed
// as HTML). The login cookie rides along with every request.
"use strict";

const $ = (id) => document.getElementById(id);
let receiversFilled = false;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

async function api(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  let data = {};
  try { data = await r.json(); } catch (e) { data = {}; }
  return { status: r.status, data };
}

function bytes(n) {
  if (n === undefined || n === null) return "";
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(2) + " MiB";
}

function duration(j) {
  if (!j.started_ms) return "";
  const end = j.finished_ms || Date.now();
  return ((end - j.started_ms) / 1000).toFixed(1) + " s";
}

function renderParties(st) {
  const body = $("parties-body");
  body.replaceChildren();
  for (const p of st.parties) {
    const tr = el("tr");
    tr.dataset.party = p.name;
    tr.append(el("td", p.name));
    const s = el("td", p.status, p.status === "unreachable" ? "down" : "up");
    if (p.why) s.title = p.why;
    tr.append(s);
    tr.append(el("td", p.rtt_ms !== undefined ? p.rtt_ms.toFixed(2) + " ms" : ""));
    tr.append(el("td", p.address));
    tr.append(el("td", p.console));
    tr.append(el("td", p.identity));
    body.append(tr);
  }
  if (!receiversFilled) {
    const sel = $("psi-receiver");
    for (const p of st.parties) sel.append(new Option(p.name, p.name));
    receiversFilled = true;
  }
}

// The party's gateway (argot mesh), when the console was given its admin
// address: a row per router and cluster, its endpoints in the last cell.
function renderGateway(st) {
  const g = st.gateway;
  $("gateway").hidden = !g;
  if (!g) return;
  $("gateway-admin").textContent = "admin " + g.admin;
  $("gateway-why").textContent = g.why ? "cannot read the gateway's state: " + g.why : "";
  const body = $("gateway-body");
  body.replaceChildren();
  const ms = (v) => (typeof v === "number" ? v.toFixed(2) + " ms" : "");
  for (const r of g.routers || []) {
    const clusters = r.clusters && r.clusters.length ? r.clusters : [null];
    for (const c of clusters) {
      const tr = el("tr");
      tr.dataset.router = r.label || "";
      tr.append(el("td", (r.label || "") + " (" + (r.protocol || "") + ")"));
      if (!c) {
        tr.append(el("td", "no traffic yet", "muted"));
        body.append(tr);
        continue;
      }
      tr.dataset.cluster = c.id || "";
      tr.append(el("td", c.id), el("td", c.state), el("td", c.requests));
      tr.append(el("td", typeof c.success_rate === "number"
        ? (100 * c.success_rate).toFixed(1) + " %" : ""));
      tr.append(el("td", ms(c.p50_ms)), el("td", ms(c.p99_ms)));
      tr.append(el("td", (c.endpoints || []).map((e) => e.addr + " " + e.state + " " +
        e.successes + "/" + e.requests + " ok, ewma " + ms(e.ewma_ms)).join("; ")));
      body.append(tr);
    }
  }
}

// The party's resource manager (argot rm), when the console was given its
// address: nodes, queues, applications.
function renderCluster(st) {
  const r = st.rm;
  $("cluster").hidden = !r;
  if (!r) return;
  $("rm-address").textContent = r.address;
  $("rm-why").textContent = r.why ? "cannot read the resource manager: " + r.why : "";
  const pct = (v) => (typeof v === "number" ? (100 * v).toFixed(0) + " %" : "");
  const rows = (id, items, cells) => {
    const body = $(id);
    body.replaceChildren();
    for (const it of items || []) {
      const tr = el("tr");
      tr.append(...cells(it).map((c) => el("td", c)));
      body.append(tr);
    }
  };
  rows("rm-nodes", r.nodes, (n) => [n.node, n.state, n.rack, n.used_mb + " / " + n.total_mb +
    " MiB", n.used_vcores + " / " + n.total_vcores, n.containers]);
  rows("rm-queues", r.queues, (q) => [q.name, pct(q.capacity), pct(q.maximum_capacity),
    pct(q.current_capacity), q.applications]);
  rows("rm-apps", r.applications, (a) => [a.id, a.name, a.queue, a.user, a.state,
    pct(a.progress), a.used_mb + " MiB", a.used_vcores]);
}

function showErrors(prefix, errors) {
  document.querySelectorAll("[id^='" + prefix + "-'].err").forEach((e) => { e.textContent = ""; });
  document.querySelectorAll("[id^='" + prefix + "-'].invalid").forEach((e) => {
    e.classList.remove("invalid");
  });
  for (const [field, msg] of Object.entries(errors || {})) {
    const span = $(prefix + "-" + field + "-err") || $(prefix + "-form-err");
    span.textContent = span.id.endsWith("form-err") && field !== "form" ? field + ": " + msg : msg;
    const input = $(prefix + "-" + field);
    if (input) input.classList.add("invalid");
  }
}

function approvalCard(j) {
  const card = el("div", null, "approval");
  card.id = "approve-" + j.id;
  card.dataset.job = j.id;
  const p = el("p");
  if (j.kind === "lr-train") {
    p.append(el("strong", j.proposer), " asks for a logistic regression training on columns ",
             el("code", j.keys), ", label " + j.label + ", " + j.epochs + " epochs, batch " +
             j.batch_size + ", learning rate " + j.learning_rate + " (job " + j.id + ").");
  } else if (j.kind === "lr-predict") {
    p.append(el("strong", j.proposer), " asks for a logistic regression prediction on columns ",
             el("code", j.keys), ", label " + j.label + " (job " + j.id + ").");
  } else if (j.kind === "stats") {
    p.append(el("strong", j.proposer), " asks for joint statistics (" + j.stats +
             ") with rows aligned on columns ", el("code", j.keys), ", revealed to " +
             j.reveal_to + " (job " + j.id + ").");
  } else {
    p.append(el("strong", j.proposer), " asks for a PSI on columns ", el("code", j.keys),
             ", receiver " + (j.receiver || "both") + ", join " + (j.join || "inner") +
             " (job " + j.id + ").");
  }
  card.append(p);
  const pre = "ap-" + j.id;
  const form = el("form");
  form.noValidate = true;
  const field = (name, label, value) => {
    const d = el("div", null, "field");
    const l = el("label", label);
    l.htmlFor = pre + "-" + name;
    const i = el("input");
    i.id = pre + "-" + name;
    i.name = name;
    i.value = value || "";
    const e = el("span", "", "err");
    e.id = pre + "-" + name + "-err";
    d.append(l, i, e);
    form.append(d);
  };
  field("input", "Your input CSV");
  field("keys", "Your key columns", j.keys);
  if (j.kind === "lr-predict") field("model", "Your model file");
  if (j.kind !== "stats")
    field("output", j.kind === "lr-train" ? "Your model file"
                    : j.kind === "lr-predict" ? "Your scores CSV (label party only)"
                    : "Your output CSV");
  const ferr = el("span", "", "err");
  ferr.id = pre + "-form-err";
  const ok = el("button", "Approve");
  ok.type = "submit";
  ok.className = "approve";
  const no = el("button", "Decline", "secondary decline");
  no.type = "button";
  form.append(ferr, el("br"), ok, " ", no);
  const send = async (approve) => {
    const body = { id: j.id, approve };
    if (approve) {
      for (const n of ["input", "keys", "output", "model"]) {
      const i = $(pre + "-" + n);
      if (i) body[n] = i.value;
    }
    }
    const r = await api("POST", "/api/decide", body);
    if (r.status === 200) { card.remove(); refresh(); return; }
    showErrors(pre, r.data.errors || { form: r.data.error || "refused (" + r.status + ")" });
  };
  form.addEventListener("submit", (ev) => { ev.preventDefault(); send(true); });
  no.addEventListener("click", () => send(false));
  card.append(form);
  return card;
}

function renderApprovals(st) {
  const list = $("approvals-list");
  const waiting = st.jobs.filter((j) => j.awaiting_me);
  const ids = new Set(waiting.map((j) => j.id));
  for (const card of Array.from(list.children))
    if (!ids.has(card.dataset.job)) card.remove();
  for (const j of waiting)
    if (!$("approve-" + j.id)) list.append(approvalCard(j));
  $("approvals-none").hidden = waiting.length > 0;
}

// The loss per epoch as an inline SVG line chart (no library).
function lossCurve(losses) {
  const NS = "http://www.w3.org/2000/svg";
  const W = 260, H = 110, L = 40, R = 8, T = 8, B = 18;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "loss-curve");
  svg.setAttribute("width", W);
  svg.setAttribute("height", H);
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "loss per epoch");
  const max = Math.max(...losses), min = Math.min(...losses, 0);
  const span = max - min || 1;
  const x = (i) => L + (losses.length > 1 ? i * (W - L - R) / (losses.length - 1) : 0);
  const y = (v) => T + (H - T - B) * (1 - (v - min) / span);
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  add("line", { x1: L, y1: H - B, x2: W - R, y2: H - B });
  add("line", { x1: L, y1: T, x2: L, y2: H - B });
  add("text", { x: 2, y: T + 8 }, max.toPrecision(3));
  add("text", { x: 2, y: H - B }, min.toPrecision(3));
  add("text", { x: L, y: H - 4 }, "epoch 1");
  add("text", { x: W - R - 40, y: H - 4 }, "epoch " + losses.length);
  add("polyline", { points: losses.map((v, i) => x(i).toFixed(1) + "," + y(v).toFixed(1))
    .join(" ") });
  losses.forEach((v, i) => add("circle", { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 2.5 }));
  return svg;
}

// argot stats' JSON as a table: a row per column, a column per statistic;
// then the correlation matrix when there is one.
function statsTables(st) {
  const wrap = el("div");
  const cols = Object.keys(st.columns || {});
  const names = cols.length ? Object.keys(st.columns[cols[0]]).filter((k) => k !== "hist") : [];
  const fmt = (v) => (v === null || v === undefined ? "-" :
                      Number.isInteger(v) ? String(v) : Number(v).toPrecision(6));
  const t = el("table", null, "stats");
  const hr = el("tr");
  hr.append(el("th", "column"), ...names.map((n) => el("th", n)));
  t.append(hr);
  for (const c of cols) {
    const tr = el("tr");
    tr.dataset.column = c;
    tr.append(el("td", c), ...names.map((n) => el("td", fmt(st.columns[c][n]))));
    t.append(tr);
  }
  wrap.append(t);
  if (st.corr) {
    const ct = el("table", null, "stats corr");
    const h = el("tr");
    h.append(el("th", "corr"), ...st.corr.columns.map((n) => el("th", n)));
    ct.append(h);
    st.corr.matrix.forEach((row, i) => {
      const tr = el("tr");
      tr.append(el("td", st.corr.columns[i]), ...row.map((v) => el("td", fmt(v))));
      ct.append(tr);
    });
    wrap.append(ct);
  }
  return wrap;
}

/* "rows 524288/1048576 (50.0%), 9,500 rows/s, bucket 1/2" from a PSI's
 * progress line (argot psi --progress-json). */
function psiProgress(p) {
  const pct = p.rows_total ? (100 * p.rows / p.rows_total).toFixed(1) : "100.0";
  const rate = p.seconds > 0 ? Math.round(p.rows / p.seconds).toLocaleString("en") : "-";
  return "rows " + p.rows + "/" + p.rows_total + " (" + pct + "%), " + rate + " rows/s, bucket " +
         p.bucket + "/" + p.buckets;
}

function resultCell(j) {
  const td = el("td");
  if (j.state === "running" && j.progress && j.kind === "psi") {
    const last = j.progress[j.progress.length - 1];
    td.append(el("span", last ? psiProgress(last) : "starting", "progress"));
  } else if (j.state === "running" && j.progress) {
    const last = j.progress[j.progress.length - 1];
    td.append(el("span", last ? "epoch " + last.epoch + "/" + last.epochs + ", loss " +
                                last.loss.toFixed(4) : "starting", "progress"));
    if (j.progress.length) td.append(lossCurve(j.progress.map((e) => e.loss)));
  } else if (j.state === "done" && j.result && j.kind === "lr-train") {
    const r = j.result, losses = r.losses || [];
    td.append(el("span", r.rows + " rows, " + r.features + " features here; final loss " +
                         (losses.length ? losses[losses.length - 1].toFixed(4) : "?"), "result"));
    if (losses.length) td.append(lossCurve(losses));
  } else if (j.state === "done" && j.result && j.kind === "lr-predict") {
    const r = j.result, e = r.evaluation;
    if (!r.receiver) {
      td.append(el("span", "the scores went to " + j.label.split(":")[0], "result"));
    } else if (e) {
      td.append(el("span", "accuracy " + e.accuracy.toFixed(3) + ", AUC " +
                           (e.auc === null ? "-" : e.auc.toFixed(3)) + " on " + e.rows + " rows",
                   "result evaluation"));
      const a = el("a", "scores");
      a.href = "/api/output?job=" + encodeURIComponent(j.id);
      a.className = "output-link";
      td.append(" ", a);
    } else {
      td.append(el("span", "scored; not evaluated: " + r.evaluation_error, "err"));
    }
  } else if (j.state === "done" && j.result && j.kind === "stats") {
    if (j.result.learned) {
      td.append(el("span", j.result.stats.rows + " rows", "result"), statsTables(j.result.stats));
    } else {
      td.append(el("span", "revealed to " + j.reveal_to + " only", "result"));
    }
  } else if (j.state === "done" && j.result) {
    const r = j.result;
    if (j.kind === "psi") {
      td.append(el("span", r.receiver ? "intersection " + r.intersection + " keys"
                                      : "not a receiver (peer has " + r.peer_rows + " rows)",
                   "result"));
      const last = j.progress && j.progress[j.progress.length - 1];
      if (last)
        td.append(" ", el("span", psiProgress(last), "progress psi-rate"));
      if (r.receiver && j.output) {
        const a = el("a", "output file");
        a.href = "/api/output?job=" + encodeURIComponent(j.id);
        a.className = "output-link";
        td.append(" ", a);
      }
    }
  } else if (j.error) {
    td.append(el("span", j.error, "err"));
  }
  return td;
}

function renderJobs(st) {
  const body = $("jobs-body");
  body.replaceChildren();
  for (const j of st.jobs) {
    const tr = el("tr");
    tr.dataset.job = j.id;
    tr.append(el("td", j.id), el("td", j.kind), el("td", j.proposer));
    tr.append(el("td", j.parties.map((p) => p.name + ": " + p.decision).join(", ")));
    tr.append(el("td", j.state, "state state-" + j.state));
    tr.append(el("td", duration(j)));
    tr.append(el("td", j.result ? bytes(j.result.bytes_sent) : ""));
    tr.append(resultCell(j));
    body.append(tr);
  }
}

async function refresh() {
  let r;
  try { r = await api("GET", "/api/state"); } catch (e) { return; }
  if (r.status === 401) {
    $("login").hidden = false;
    $("app").hidden = true;
    return;
  }
  if (r.status !== 200) return;
  $("login").hidden = true;
  $("app").hidden = false;
  $("whoami").textContent = "party " + r.data.party;
  renderParties(r.data);
  renderGateway(r.data);
  renderCluster(r.data);
  renderApprovals(r.data);
  renderJobs(r.data);
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  location.href = "/?token=" + encodeURIComponent($("login-token").value.trim());
});

async function propose(prefix, body) {
  const r = await api("POST", "/api/jobs", body);
  if (r.status === 201) {
    showErrors(prefix, {});
    refresh();
    return;
  }
  showErrors(prefix, r.data.errors || { form: r.data.error || "refused (" + r.status + ")" });
}

// A number field as JSON: a number when it reads as one, else the text
// (the API then says what is wrong with it, next to the field).
function num(id) {
  const v = $(id).value.trim();
  return v !== "" && !isNaN(Number(v)) ? Number(v) : v;
}

$("psi-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const body = { kind: "psi" };
  for (const n of ["input", "keys", "receiver", "join", "output"]) body[n] = $("psi-" + n).value;
  propose("psi", body);
});

$("stats-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const body = { kind: "stats" };
  for (const n of ["input", "keys", "stats", "reveal_to"]) body[n] = $("stats-" + n).value;
  propose("stats", body);
});

$("pr-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const body = { kind: "lr-predict" };
  for (const n of ["input", "keys", "label", "model", "output"]) body[n] = $("pr-" + n).value;
  propose("pr", body);
});

$("lr-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const body = { kind: "lr-train" };
  for (const n of ["input", "keys", "label", "output"]) body[n] = $("lr-" + n).value;
  for (const n of ["epochs", "batch_size", "learning_rate"]) body[n] = num("lr-" + n);
  propose("lr", body);
});

refresh();
setInterval(refresh, 1000);
