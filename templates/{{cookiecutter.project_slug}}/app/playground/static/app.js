// The playground: streams answers from /v1/chat/completions and shows, under each one, the interaction
// record that explains it. Every write to the page uses textContent: model output is never parsed as HTML.
{%- if cookiecutter.use_case == 'agents' %}
// With an agent picked, it chats through /v1/agents/{name}/chat/completions instead: each step of the run
// shows as it streams (`: step {...}` SSE comments), and the run record is shown above the provenance.
{%- endif %}
const KEY = "playground.apiKey"; // sessionStorage: gone when the tab closes, never put in a URL
const $ = (selector) => document.querySelector(selector);
const conversation = [];

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function showError(message) {
  $("#error").textContent = message || "";
}

function authHeaders() {
  const key = sessionStorage.getItem(KEY);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "Content-Type": "application/json", ...authHeaders(), ...(options.headers || {}) },
  });
  if (!response.ok) {
    let message = response.statusText;
    try {
      const body = await response.json();
      message = (body.error && body.error.message) || body.detail || message;
    } catch (_) { /* not JSON */ }
    throw new Error(`${response.status}: ${message}`);
  }
  return response;
}

async function loadPickers() {
  const [config, models] = await Promise.all([
    api("/playground/config").then((r) => r.json()),
    api("/v1/models").then((r) => r.json()),
  ]);
  document.body.dataset.useCase = config.use_case;
  $("#prompt-name").textContent = config.prompt_name;
  const versions = $("#prompt-version");
  versions.replaceChildren(el("option", "", `latest (${config.default_prompt_version})`));
  versions.firstChild.value = "";
  for (const version of config.prompt_versions) {
    const option = el("option", "", version);
    option.value = version;
    versions.append(option);
  }
  const picker = $("#model");
  picker.replaceChildren(el("option", "", "(server default)"));
  picker.firstChild.value = "";
  for (const model of models.data) {
    const option = el("option", "", `${model.id} (${model.owned_by})`);
    option.value = model.id;
    picker.append(option);
  }
{%- if cookiecutter.use_case == 'agents' %}
  await loadAgents();
{%- endif %}
  $("#key-status").textContent = "connected";
}
{%- if cookiecutter.use_case == 'agents' %}

// The agents of agents.json (GET /v1/agents); the first is picked, since agents are what this project is for.
async function loadAgents() {
  const agents = await api("/v1/agents").then((r) => r.json());
  const picker = $("#agent");
  picker.replaceChildren(el("option", "", "(none: plain chat)"));
  picker.firstChild.value = "";
  for (const agent of agents.data) {
    const tools = [...agent.tools.map((t) => t.name), ...agent.mcp_servers.map((s) => `MCP ${s}`)];
    const option = el("option", "", `${agent.name} (${tools.join(", ") || "no tools"})`);
    option.value = agent.name;
    picker.append(option);
  }
  if (agents.data.length) picker.value = agents.data[0].name;
  agentPicked();
}

// An agent brings its own model and instructions (agents.json), so the model and prompt pickers step aside.
function agentPicked() {
  for (const id of ["#model", "#prompt-version"]) $(id).disabled = Boolean($("#agent").value);
}

// A step of the run as it streams: the run record's own entry, so arguments follow TRACE_CONTENT.
function renderRunStep(box, step) {
  const node = el("div", "step");
  node.dataset.type = step.type;
  if (step.type === "tool") {
    node.dataset.tool = step.name;
    node.textContent = `tool step ${step.step}: ${step.name}(${step.arguments ?? "…"})` +
      (step.error ? ` failed: ${step.error}` : ` done in ${step.duration_ms} ms`);
  } else {
    node.textContent = `model call ${step.step}` + (step.error ? ` failed: ${step.error}` : `: ${step.model} ` +
      `(${step.provider}) ${step.tool_calls.length ? `asks for ${step.tool_calls.join(", ")}` : "answers"}`);
  }
  box.append(node);
}

// Under the answer: the run record (GET /v1/agents/runs/{id}) with every tool call it made.
function renderRun(box, run) {
  const hidden = `(not kept: trace_content=${run.trace_content})`;
  box.replaceChildren(el("strong", "", "Agent run"));
  const list = el("dl");
  field(list, "run_id", "run", run.id);
  field(list, "run_status", "status", run.status + (run.error ? `: ${run.error}` : ""));
  field(list, "run_calls", "model / tool calls", `${run.model_calls} / ${run.tool_calls}`);
  field(list, "run_tokens", "run tokens in / out", `${run.usage.input_tokens} / ${run.usage.output_tokens}`);
  box.append(list);
  for (const step of run.steps.filter((s) => s.type === "tool")) {
    const call = el("div", "tool-call");
    call.dataset.tool = step.name;
    const where = step.server ? `MCP ${step.server}` : step.source;
    call.append(el("div", "", `${step.name} (${where}), ${step.duration_ms} ms`),
      el("div", "", `arguments: ${step.arguments ?? hidden}`),
      el("div", step.error ? "error" : "", step.error ? `error: ${step.error}` : `result: ${step.result ?? hidden}`));
    box.append(call);
  }
  box.dataset.runId = run.id;
}
{%- endif %}

function field(list, name, label, value) {
  list.append(el("dt", "", label));
  const dd = el("dd", "", value === null || value === undefined || value === "" ? "n/a" : value);
  dd.dataset.field = name;
  list.append(dd);
}

function renderProvenance(panel, record) {
  panel.replaceChildren();
  panel.append(el("strong", "", "Why this answer"));
  const list = el("dl");
  const prompt = record.prompt || {};
  field(list, "prompt", "prompt", `${prompt.name} ${prompt.version}`);
  field(list, "prompt_version", "prompt version", prompt.version);
  field(list, "prompt_sha256", "prompt sha256", prompt.sha256);
  field(list, "requested_model", "requested model", record.requested_model);
  field(list, "model", "model (returned)", record.response_model || record.model);
  field(list, "provider", "provider", record.provider);
  const usage = record.usage || {};
  field(list, "tokens", "tokens in / out",
    `${usage.input_tokens} / ${usage.output_tokens}${usage.estimated ? " (estimated)" : ""}`);
  field(list, "cost_usd", "cost (USD)", record.cost_usd === null || record.cost_usd === undefined
    ? null : Number(record.cost_usd).toFixed(6));
  field(list, "ttft_ms", "time to first token", record.ttft_ms === null ? null : `${record.ttft_ms} ms`);
  field(list, "latency_ms", "total latency", `${record.latency_ms} ms`);
  field(list, "trace_id", "trace id", record.trace_id);
  field(list, "interaction_id", "interaction", record.id);
  field(list, "documents", "documents", (record.retrieved_document_ids || []).join(", ") || "none retrieved");
  field(list, "feedback", "feedback", (record.feedback || [])
    .map((f) => f.rating + (f.comment ? `: ${f.comment}` : "")).join("; ") || "none yet");
  panel.append(list);
  for (const chunk of record.retrieved_chunks || []) {
    const quote = el("div", "chunk", `[${chunk.document_id}#${chunk.chunk_index}] ${chunk.text ?? "(content not kept)"}`);
    quote.dataset.documentId = chunk.document_id;
    panel.append(quote);
  }
  panel.dataset.interactionId = record.id;
}

function feedbackControls(turn, interactionId, panel) {
  const box = el("div", "feedback");
  const up = el("button", "secondary", "👍 good");
  const down = el("button", "secondary", "👎 bad");
  up.type = down.type = "button";
  up.title = "Good answer";
  down.title = "Bad answer";
  up.dataset.rating = "up";
  down.dataset.rating = "down";
  const comment = el("input");
  comment.placeholder = "Optional comment";
  comment.className = "feedback-comment";
  const submit = el("button", "", "Send feedback");
  submit.type = "button";
  submit.className = "feedback-submit";
  const status = el("span", "feedback-status");
  let rating = null;
  for (const button of [up, down]) {
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", () => {
      rating = button.dataset.rating;
      up.setAttribute("aria-pressed", String(rating === "up"));
      down.setAttribute("aria-pressed", String(rating === "down"));
    });
  }
  submit.addEventListener("click", async () => {
    if (!rating) {
      status.textContent = "pick 👍 or 👎 first";
      return;
    }
    try {
      await api(`/v1/interactions/${encodeURIComponent(interactionId)}/feedback`, {
        method: "POST", body: JSON.stringify({ rating, comment: comment.value || null }),
      });
      status.textContent = "saved";
      const record = await api(`/v1/interactions/${encodeURIComponent(interactionId)}`).then((r) => r.json());
      renderProvenance(panel, record);
    } catch (error) {
      status.textContent = error.message;
    }
  });
  box.append(up, down, comment, submit, status);
  turn.append(box);
}

// Tool calls arrive as OpenAI `delta.tool_calls` fragments keyed by index: name first, arguments in pieces.
function renderStep(steps, stepsBox, call) {
  const index = call.index ?? 0;
  let step = steps.get(index);
  if (!step) {
    step = { id: call.id || "", name: "", args: "", node: el("div", "step") };
    steps.set(index, step);
    stepsBox.append(step.node);
  }
  if (call.function && call.function.name) step.name += call.function.name;
  if (call.function && call.function.arguments) step.args += call.function.arguments;
  step.node.textContent = `tool step ${index + 1}: ${step.name}(${step.args})`;
}

async function* sseData(response{% if cookiecutter.use_case == 'agents' %}, onComment{% endif %}) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
{%- if cookiecutter.use_case == 'agents' %}
      for (const line of event.split("\n")) if (line.startsWith(":")) onComment(line.slice(1).trim());
{%- endif %}
      const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (data) yield data;
    }
  }
}

async function send(text) {
  conversation.push({ role: "user", content: text });
  $("#transcript").append(el("div", "turn user", text));
  const turn = el("div", "turn assistant");
  const stepsBox = el("div", "steps");
  const answer = el("div", "answer");
  const panel = el("div", "provenance");
{%- if cookiecutter.use_case == 'agents' %}
  const runBox = el("div", "run");
  turn.append(stepsBox, answer, runBox, panel);
  const agent = $("#agent").value;
  const path = agent ? `/v1/agents/${encodeURIComponent(agent)}/chat/completions` : "/v1/chat/completions";
  let runId = null;
{%- else %}
  turn.append(stepsBox, answer, panel);
{%- endif %}
  $("#transcript").append(turn);
  const body = { messages: conversation, stream: true, stream_options: { include_usage: true } };
  if ($("#model").value) body.model = $("#model").value;
  if ($("#prompt-version").value) body.metadata = { prompt_version: $("#prompt-version").value };
  const steps = new Map();
  let interactionId = null;
  try {
{%- if cookiecutter.use_case == 'agents' %}
    const response = await api(path, { method: "POST", body: JSON.stringify(body) });
    interactionId = response.headers.get("X-Interaction-Id");
    runId = response.headers.get("X-Agent-Run-Id");
    const onComment = (text) => text.startsWith("step ") && renderRunStep(stepsBox, JSON.parse(text.slice(5)));
    for await (const data of sseData(response, onComment)) {
{%- else %}
    const response = await api("/v1/chat/completions", { method: "POST", body: JSON.stringify(body) });
    interactionId = response.headers.get("X-Interaction-Id");
    for await (const data of sseData(response)) {
{%- endif %}
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      if (!interactionId && chunk.id) interactionId = chunk.id.replace(/^chatcmpl-/, "");
      for (const choice of chunk.choices || []) {
        const delta = choice.delta || {};
        if (delta.content) answer.textContent += delta.content;
        for (const call of delta.tool_calls || []) renderStep(steps, stepsBox, call);
      }
    }
    conversation.push({ role: "assistant", content: answer.textContent });
    turn.dataset.done = "true";
  } catch (error) {
    answer.classList.add("error");
    answer.textContent += `\n[${error.message}]`;
    conversation.pop();
  }
{%- if cookiecutter.use_case == 'agents' %}
  if (runId) {
    // The answer's id names the run, not an interaction: provenance is the run's last model call.
    try {
      const run = await api(`/v1/agents/runs/${encodeURIComponent(runId)}`).then((r) => r.json());
      renderRun(runBox, run);
      interactionId = run.steps.filter((s) => s.interaction_id).map((s) => s.interaction_id).pop() || null;
    } catch (error) {
      runBox.textContent = `run record unavailable: ${error.message}`;
      interactionId = null;
    }
  }
{%- endif %}
  if (interactionId) {
    try {
      const record = await api(`/v1/interactions/${encodeURIComponent(interactionId)}`).then((r) => r.json());
      renderProvenance(panel, record);
      feedbackControls(turn, record.id, panel);
    } catch (error) {
      panel.textContent = `provenance unavailable: ${error.message}`;
    }
  }
}

$("#key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = $("#api-key").value.trim();
  if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
  $("#api-key").value = "";
  showError("");
  try {
    await loadPickers();
  } catch (error) {
    $("#key-status").textContent = "";
    showError(error.message);
  }
});

$("#composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("#message").value.trim();
  if (!text) return;
  $("#message").value = "";
  $("#send").disabled = true;
  showError("");
  try {
    await send(text);
  } finally {
    $("#send").disabled = false;
  }
});

$("#message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("#composer").requestSubmit();
  }
});

{% if cookiecutter.use_case == 'agents' %}$("#agent").addEventListener("change", agentPicked);

{% endif %}$("#reset").addEventListener("click", () => {
  conversation.length = 0;
  $("#transcript").replaceChildren();
});

loadPickers().catch((error) => {
  // Expected before a key is entered when auth is on.
  if (sessionStorage.getItem(KEY)) showError(error.message);
});
