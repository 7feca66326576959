// The channel page's script: polls the channel as the chosen person sees it, shows the thread being followed,
// and sends what that person types and clicks back to the page's server (which signs it as Slack would).
(() => {
  "use strict";
  const config = JSON.parse(document.getElementById("config").textContent);
  const $ = (id) => document.getElementById(id);
  const people = new Map(config.people.map((person) => [person.id, person]));
  const fromUrl = new URLSearchParams(location.search).get("as");
  let viewer = people.has(fromUrl) ? fromUrl : config.people[0].id;
  let etag = "";
  let latest = null;         // the last state received
  let pinned = null;         // the thread the viewer opened; null: follow the thread with the latest reply
  let closed = false;        // the viewer closed the thread pane
  let knownParents = null;   // thread parents already seen; a new one (a new run) is followed again
  let seenEphemerals = null; // the viewer's ephemeral messages already notified
  let timer = null;
  let clickedAt = 0;         // when the viewer last pressed a button: its ephemeral answer is worth a notification

  // ---- people

  function renderPeople() {
    $("people").innerHTML = "";
    for (const person of config.people) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "person";
      button.dataset.as = person.id;
      button.setAttribute("role", "radio");
      button.setAttribute("aria-checked", String(person.id === viewer));
      button.innerHTML = '<div class="avatar person"></div><div><span class="person-name"></span>' +
        '<span class="person-role"></span></div>';
      button.querySelector(".avatar").dataset.user = person.id;
      button.querySelector(".avatar").textContent = person.name.slice(0, 1).toUpperCase();
      button.querySelector(".person-name").textContent = person.name;
      button.querySelector(".person-role").textContent = person.role;
      button.addEventListener("click", () => actAs(person.id));
      $("people").appendChild(button);
    }
    $("acting-as").innerHTML = "Acting as <b></b>";
    $("acting-as").querySelector("b").textContent = people.get(viewer).name;
  }

  function actAs(id) {
    if (id === viewer) return;
    viewer = id;
    etag = "";
    seenEphemerals = null;
    const url = new URL(location.href);
    url.searchParams.set("as", id);
    history.replaceState(null, "", url);
    renderPeople();
    refresh();
  }

  // ---- live state

  function atBottom(element) {
    return element.scrollHeight - element.scrollTop - element.clientHeight < 40;
  }

  const shown = new Map(); // element id -> the HTML it shows

  function replace(element, html) {
    if (shown.get(element.id) === html) return;
    const follow = atBottom(element) || !shown.has(element.id);
    element.innerHTML = html;
    shown.set(element.id, html);
    localTimes(element);
    if (follow) element.scrollTop = element.scrollHeight;
  }

  function localTimes(root) {
    for (const time of root.querySelectorAll("time[data-ts]")) {
      const when = new Date(parseFloat(time.dataset.ts) * 1000);
      time.title = when.toString();
      time.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    }
  }

  function apply(state) {
    latest = state;
    replace($("messages"), state.channel || '<div class="empty">Nothing here yet. Type a command below: ' +
      "the bot answers in this channel and in threads.</div>");
    const parents = Object.keys(state.threads);
    if (knownParents !== null && parents.some((ts) => !knownParents.has(ts))) {
      pinned = null;    // a new thread: a new run started, follow it
      closed = false;
    }
    knownParents = new Set(parents);
    showThread();
    notifyEphemerals(state.ephemerals || []);
  }

  function showThread() {
    const ts = pinned && latest.threads[pinned] ? pinned : latest.latest_thread;
    const pane = $("thread");
    if (!ts || closed) {
      pane.hidden = true;
      return;
    }
    pane.hidden = false;
    pane.dataset.threadTs = ts;
    replace($("thread-messages"), latest.threads[ts]);
  }

  function notifyEphemerals(ephemerals) {
    const first = seenEphemerals === null;
    seenEphemerals = seenEphemerals || new Set();
    for (const ephemeral of ephemerals) {
      if (seenEphemerals.has(ephemeral.ts)) continue;
      seenEphemerals.add(ephemeral.ts);
      if (!first && Date.now() - clickedAt < 15000) toast(ephemeral.text, "Only visible to you");
    }
  }

  async function refresh() {
    clearTimeout(timer);
    const asked = viewer;
    try {
      const query = new URLSearchParams({ as: viewer, known: etag });
      const response = await fetch("state.json?" + query, { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const state = await response.json();
      $("connection").classList.remove("lost");
      if (asked === viewer && !state.unchanged) {
        etag = state.etag;
        apply(state);
      }
    } catch (error) {
      $("connection").classList.add("lost");
      $("connection").title = "the stand-in does not answer: " + error.message;
    }
    timer = setTimeout(refresh, config.poll_ms);
  }

  // ---- acting

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ as: viewer, ...body }),
    });
    let answer = {};
    try { answer = await response.json(); } catch (error) { /* not JSON */ }
    if (!response.ok || !answer.ok) throw new Error(answer.error || "HTTP " + response.status);
    return answer;
  }

  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("composer-input");
    const text = input.value.trim();
    if (!text) return;
    $("send").disabled = true;
    try {
      await post("command", { text });
      input.value = "";
    } catch (error) {
      toast(error.message, "Not sent", "error");
    } finally {
      $("send").disabled = false;
      input.focus();
      refresh();
    }
  });

  function renderSuggestions() {
    for (const suggestion of config.suggestions) {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "suggestion";
      chip.textContent = suggestion;
      chip.addEventListener("click", () => {
        $("composer-input").value = suggestion;
        $("composer-input").focus();
      });
      $("suggestions").appendChild(chip);
    }
    if (config.suggestions.length) $("composer-input").value = config.suggestions[0];
  }

  async function press(button) {
    const { messageTs, blockId, actionId } = button.dataset;
    button.classList.add("pending");
    clickedAt = Date.now();
    try {
      await post("click", { message_ts: messageTs, block_id: blockId, action_id: actionId });
    } catch (error) {
      toast(error.message, "Click not sent", "error");
    } finally {
      button.classList.remove("pending");
      refresh();
    }
  }

  function confirmFirst(dialog) {
    return new Promise((resolve) => {
      $("dialog-title").textContent = dialog.title;
      $("dialog-text").textContent = dialog.text;
      $("dialog-confirm").textContent = dialog.confirm;
      $("dialog-confirm").className = "button " + (dialog.style === "danger" ? "danger" : "primary");
      $("dialog-deny").textContent = dialog.deny;
      $("dialog").hidden = false;
      $("dialog-confirm").focus();
      const done = (answer) => {
        $("dialog").hidden = true;
        $("dialog-confirm").onclick = $("dialog-deny").onclick = null;
        document.removeEventListener("keydown", onKey);
        resolve(answer);
      };
      const onKey = (event) => { if (event.key === "Escape") done(false); };
      document.addEventListener("keydown", onKey);
      $("dialog-confirm").onclick = () => done(true);
      $("dialog-deny").onclick = () => done(false);
    });
  }

  document.addEventListener("click", async (event) => {
    const opener = event.target.closest("[data-open-thread]");
    if (opener) {
      event.preventDefault();
      pinned = opener.dataset.openThread;
      closed = false;
      showThread();
      return;
    }
    const button = event.target.closest("button[data-action-id]");
    if (!button || button.disabled || button.classList.contains("pending")) return;
    if (button.dataset.confirm && !(await confirmFirst(JSON.parse(button.dataset.confirm)))) return;
    press(button);
  });

  $("close-thread").addEventListener("click", () => {
    closed = true;
    $("thread").hidden = true;
  });

  function toast(text, label, kind) {
    const element = document.createElement("div");
    element.className = "toast" + (kind ? " " + kind : "");
    element.innerHTML = '<span class="toast-label"></span><span class="toast-text"></span>';
    element.querySelector(".toast-label").textContent = label;
    element.querySelector(".toast-text").textContent = text;
    $("toasts").appendChild(element);
    setTimeout(() => element.remove(), 8000);
  }

  // A colour emoji font draws coloured pixels; without one (a headless Chromium in CI) the page uses the
  // fallback symbols of sandbox/slack/html_render.py.
  function hasColourEmoji() {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 24;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.font = '20px "Apple Color Emoji", "Segoe UI Emoji", "Noto Color Emoji", sans-serif';
    context.textBaseline = "top";
    context.fillStyle = "#000";
    context.fillText("\u{1F680}", 0, 0);
    const pixels = context.getImageData(0, 0, 24, 24).data;
    for (let i = 0; i < pixels.length; i += 4) {
      if (pixels[i + 3] && (pixels[i] !== pixels[i + 1] || pixels[i + 1] !== pixels[i + 2])) return true;
    }
    return false;
  }

  if (!hasColourEmoji()) document.documentElement.classList.add("no-emoji-font");
  renderPeople();
  renderSuggestions();
  refresh();
})();
