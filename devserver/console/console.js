// The local console: fills index.html from /_local/status and /_local/requests and refreshes itself
// (?every=<seconds>, default 2). Everything that comes from a request (ids, errors, results) is put
// on the page as text, never as HTML.
"use strict";

// The one place the console calls the API: the operators' retry, for any owner's request. Under
// `--auth iam` it needs a signature the browser cannot make, and the refusal is shown.
const api = {
  retry: (item) => fetch(`/admin/requests/${encodeURIComponent(item.owner)}/${encodeURIComponent(item.id)}/retry`,
    { method: "POST" }),
};

// A request as operators name it (python -m ops too): its owner and its id.
function nameOf(item) { return `${item.owner}/${item.id}`; }

const EVERY_S = Math.max(0.2, Number(new URLSearchParams(location.search).get("every")) || 2);
const FUNCTION_COLUMNS = ["instances", "busy", "invocations", "cold_starts", "errors", "crashes", "timeouts"];
const SHARD_COLUMNS = ["uncommitted", "attempts"];

function $(selector) { return document.querySelector(selector); }

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function lookup(doc, path) {
  return path.split(".").reduce((value, key) => (value == null ? undefined : value[key]), doc);
}

// Numbers are shown as the status document has them, with thousands separators.
function show(value) {
  if (value === null || value === undefined) return "–";
  return typeof value === "number" ? value.toLocaleString("en-US") : String(value);
}

// A cell that shows a field of the status document: data-field names it (the browser test compares
// every such cell with GET /_local/status).
function fieldCell(tag, path, value, className = "num") {
  return element(tag, show(value), { "data-field": path, class: className });
}

function clock(iso) {
  if (!iso) return element("td", "–");
  const moment = new Date(iso);
  return element("td", moment.toLocaleTimeString("en-GB", { hour12: false }) + "." +
    String(moment.getMilliseconds()).padStart(3, "0"), { title: iso, class: "time" });
}

function seconds(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function renderStatus(status) {
  for (const node of document.querySelectorAll("header [data-field], #pipeline h2 [data-field], #pipeline p [data-field]")) {
    node.textContent = show(lookup(status, node.dataset.field));
  }
  $("#ready").textContent = status.ready ? "stream mapping reading" : "not ready";
  $("#ready").className = status.ready ? "ok" : "bad";
  const runner = status.runner || {};
  const counters = runner.counters || {};
  $("#counters").replaceChildren(...Object.keys(counters).sort().flatMap((name) => [
    element("dt", name.replaceAll("_", " ")),
    fieldCell("dd", `runner.counters.${name}`, counters[name]),
  ]));
  fill($("#shards tbody"), Object.entries(runner.shards || {}).map(([id, shard]) => {
    // Shard ids are long and alike until their last part: the whole id is in the tooltip.
    const shardCell = element("td", `…${id.slice(-13)}`, { class: "id", title: id });
    shardCell.append(element("br"), element("small", `checkpoint ${shard.checkpoint || "–"}`));
    const row = element("tr");
    row.append(shardCell, element("td", shard.state),
      element("td", seconds(shard.iterator_age_ms), { class: "num age" }),
      ...SHARD_COLUMNS.map((name) => fieldCell("td", `runner.shards.${id}.${name}`, shard[name])));
    return row;
  }));
  fill($("#functions tbody"), Object.entries(status.functions || {}).map(([name, pool]) => {
    const row = element("tr");
    row.append(element("td", name), ...FUNCTION_COLUMNS.map((column) =>
      fieldCell("td", `functions.${name}.${column}`, pool[column])));
    return row;
  }));
  fill($("#sources tbody"), Object.entries(status.eventSources || {}).map(([name, source]) => {
    const cell = element("td");
    for (const [key, value] of Object.entries(source)) {
      if (typeof value === "number") {
        const label = key.replace(/_s$/, " (s)").replaceAll("_", " ");
        cell.append(element("span", `${label} `), fieldCell("b", `eventSources.${name}.${key}`, value, "num"), " ");
      }
    }
    const row = element("tr");
    row.append(element("td", name), cell);
    return row;
  }));
}

function errorCell(error) {
  const cell = element("td", null, { class: "error" });
  if (error) cell.append(element("b", error.type), " ", element("span", error.message));
  return cell;
}

function requestRow(item, status) {
  const row = element("tr", null, { "data-request-id": nameOf(item), "data-status": item.status });
  row.append(element("td", nameOf(item), { class: "id" }), clock(item.createdAt), clock(item.updatedAt),
    element("td", show(item.attempts), { class: "num" }));
  if (status === "FAILED") {
    row.append(errorCell(item.error));
    const button = element("button", "Retry", { type: "button", "data-retry": nameOf(item) });
    button.addEventListener("click", () => retry(item, button));
    const cell = element("td");
    cell.append(button);
    row.append(cell);
  } else if (status === "PENDING") {
    row.append(errorCell(item.lastError));
  } else {
    const result = JSON.stringify(item.result) || "";
    row.append(element("td", result, { class: "result", title: result }));
  }
  return row;
}

function noneRow(columns) {
  const row = element("tr");
  row.append(element("td", "none", { colspan: String(columns), class: "none" }));
  return row;
}

function renderRequests(requests) {
  for (const status of ["FAILED", "PENDING", "SUCCEEDED"]) {
    const list = requests[status] || { items: [] };
    const table = $(`#list-${status}`);
    fill(table.tBodies[0], list.items.length ? list.items.map((item) => requestRow(item, status))
      : [noneRow(table.tHead.rows[0].cells.length)]);
    const count = status === "SUCCEEDED"
      ? `${list.items.length} of the last ${list.watched} the stream delivered`
      : `${show(list.total)}${list.totalIsAtLeast ? "+" : ""}${list.total > list.items.length ? `, newest ${list.items.length} shown` : ""}`;
    $(`[data-count="${status}"]`).textContent = count;
  }
}

function notice(text, bad = false) {
  const node = $("#notice");
  node.textContent = text;
  node.className = bad ? "notice bad" : "notice";
  node.hidden = !text;
}

async function retry(item, button) {
  const id = nameOf(item);
  button.disabled = true;
  button.textContent = "retrying…";
  try {
    const answer = await api.retry(item);
    const body = await answer.json().catch(() => ({}));
    if (answer.ok) notice(`${id}: retried, ${body.status || "PENDING"} again`);
    else notice(`${id}: retry refused (${answer.status}): ${body.message || answer.statusText}`, true);
  } catch (error) {
    notice(`${id}: retry failed: ${error}`, true);
  }
  await refresh();
}

async function getJson(path) {
  const answer = await fetch(path, { cache: "no-store" });
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.problem || body.message || answer.statusText);
  return body;
}

async function refresh() {
  const problems = [];
  const [status, requests] = await Promise.allSettled([getJson("status"), getJson("requests")]);
  if (status.status === "fulfilled") renderStatus(status.value);
  else problems.push(`status: ${status.reason.message || status.reason}`);
  if (requests.status === "fulfilled") renderRequests(requests.value);
  else problems.push(`requests: ${requests.reason.message || requests.reason}`);
  $("#problem").textContent = problems.join("; ");
  $("#problem").hidden = problems.length === 0;
  $("#updated").textContent = `updated ${new Date().toLocaleTimeString("en-GB", { hour12: false })}`;
  document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
}

// One refresh at a time, none while the tab is hidden or refreshing is switched off.
async function loop() {
  if ($("#auto").checked && !document.hidden) {
    try { await refresh(); } catch (error) { notice(`refresh failed: ${error}`, true); }
  }
  setTimeout(loop, EVERY_S * 1000);
}

$("#every").textContent = String(EVERY_S);
loop();
