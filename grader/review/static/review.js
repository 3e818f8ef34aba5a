// The review page's script: keyboard navigation, each entry saved as it is made, and the first page's actions.
// It is served as a file because the page's Content-Security-Policy runs no inline script. Learners' text is
// never markup here: the page's HTML escaped it, and this script only ever sets text (textContent, value).
"use strict";

(() => {
  const base = document.body.dataset.base;
  const view = document.body.dataset.view;
  const cards = Array.from(document.querySelectorAll("article.card"));
  const unsaved = new Set();
  const RETRY_MS = 5000;
  let current = -1;

  const $ = (card, selector) => card.querySelector(selector);

  function flash(text, bad = false) {
    const box = document.getElementById("flash");
    box.textContent = text;
    box.classList.toggle("bad", bad);
    box.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { box.hidden = true; }, bad ? 12000 : 4000);
  }

  async function post(path, body) {
    // Returns {ok, status, data}; a server that does not answer gives status 0.
    let response;
    try {
      response = await fetch(base + path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (err) {
      return { ok: false, status: 0, data: {} };
    }
    const text = await response.text();
    let data = {};
    try { data = JSON.parse(text); } catch (err) { data = { error: text.trim() }; }
    return { ok: response.ok, status: response.status, data };
  }

  // -- moving between answers ----------------------------------------------------------------------

  function select(i, scroll = true) {
    if (!cards.length) return;
    i = Math.max(0, Math.min(cards.length - 1, i));
    if (current >= 0) cards[current].classList.remove("current");
    current = i;
    const card = cards[i];
    card.classList.add("current");
    if (scroll) card.scrollIntoView({ block: "nearest" });
    if (!card.contains(document.activeElement)) card.focus({ preventScroll: true });
    history.replaceState(null, "", "#" + card.id);
  }

  function nextPending() {
    for (let step = 1; step <= cards.length; step++) {
      const i = (current + step) % cards.length;
      if (!cards[i].classList.contains("scored")) { select(i); return; }
    }
    const next = document.querySelector('a[data-nav="next"]');
    flash("Every answer on this page is scored." + (next ? " ] goes on to " + next.textContent.replace("]", "").trim() + "." : ""));
  }

  function follow(which) {
    const link = document.querySelector(`a[data-nav="${which}"]`);
    if (link) location.href = link.href;
  }

  // -- saving --------------------------------------------------------------------------------------

  function entered(card) {
    const text = $(card, "input.score").value.trim();
    return { score: text === "" ? null : Number(text), comment: $(card, "input.comment").value.trim() };
  }

  function dirty(card) {
    const now = entered(card);
    return now.score !== card.saved.score || now.comment !== card.saved.comment;
  }

  function setState(card, text) { $(card, ".state").textContent = text; }

  function problem(card, text, choices = false) {
    const box = $(card, ".problem");
    $(box, ".message").textContent = text;
    $(box, ".choices").hidden = !choices;
    box.hidden = false;
  }

  function markUnsaved(card) {
    unsaved.add(card);
    card.classList.add("unsaved");
  }

  function save(card, force = false) {
    // One save at a time per answer: each is sent with the version the one before it returned.
    card.chain = (card.chain || Promise.resolve()).then(() => send(card, force));
    return card.chain;
  }

  async function send(card, force) {
    const { score, comment } = entered(card);
    if (!force && !dirty(card)) return;
    if (score === null) {
      markUnsaved(card);
      problem(card, "Give a score first (0 to " + card.dataset.max + "); the comment is kept here and saved with it.");
      return;
    }
    markUnsaved(card);
    setState(card, "saving…");
    const body = { student: card.dataset.student, item: card.dataset.item, score, comment, seen: card.dataset.version };
    const { ok, status, data } = await post("api/entry", body);
    if (ok) {
      card.dataset.version = data.entry.version;
      card.saved = { score, comment };
      card.theirs = null;
      card.classList.remove("pending", "unsaved");
      card.classList.add("scored");
      unsaved.delete(card);
      setState(card, data.entry.state);
      $(card, ".problem").hidden = true;
      showProgress(data.progress);
      if (dirty(card)) save(card); // typed on while it was saving
      return;
    }
    if (status === 409 && data.latest) {
      card.theirs = data.latest;
      setState(card, "not saved: another entry was made meanwhile");
      problem(card, data.error, true);
      return;
    }
    if (status === 0) {
      problem(card, "Not saved: the review server does not answer (is python -m grader review still running?). " +
        "The entry is kept here and sent again in a few seconds.");
    } else {
      problem(card, data.error || "Not saved (" + status + ").");
    }
    setState(card, "not saved");
    if (status === 0 || status === 503) retryLater(card);
  }

  function retryLater(card) {
    if (card.retry) return;
    card.retry = setTimeout(() => {
      card.retry = null;
      if (unsaved.has(card)) save(card, true);
    }, RETRY_MS);
  }

  function overwrite(card) {
    if (!card.theirs) return;
    card.dataset.version = card.theirs.version;
    card.theirs = null;
    save(card, true);
  }

  function takeTheirs(card) {
    const theirs = card.theirs;
    if (!theirs) return;
    $(card, "input.score").value = theirs.score === null ? "" : String(theirs.score);
    $(card, "input.comment").value = theirs.comment;
    card.dataset.version = theirs.version;
    card.saved = entered(card);
    card.theirs = null;
    unsaved.delete(card);
    card.classList.remove("unsaved", "pending");
    card.classList.add("scored");
    setState(card, theirs.state);
    $(card, ".problem").hidden = true;
  }

  function give(card, points) {
    const most = Number(card.dataset.max);
    if (points > most) {
      flash(`${card.dataset.item} is worth ${most} points at most: ${points} is not a score for it.`, true);
      return;
    }
    $(card, "input.score").value = String(points);
    save(card);
  }

  function showProgress(progress) {
    const parts = { all: progress.all, item: progress.item, student: progress.student };
    for (const [name, counts] of Object.entries(parts)) {
      if (name !== "all" && name !== view) continue;
      for (const key of ["scored", "total", "left"]) {
        document.querySelectorAll(`[data-progress="${name}-${key}"]`).forEach((el) => { el.textContent = counts[key]; });
      }
    }
    const bar = document.querySelector('[data-progress="all-bar"]');
    if (bar) { bar.max = Math.max(progress.all.total, 1); bar.value = progress.all.scored; }
  }

  // -- the first page's actions ----------------------------------------------------------------------

  async function writeReports() {
    flash("Writing the reports…");
    const { ok, data } = await post("api/reports", {});
    flash(ok ? data.message : (data.error || "The reports were not written."), !ok);
  }

  async function importFile(input) {
    const file = input.files[0];
    if (!file) return;
    const { ok, data } = await post("api/import", { name: file.name, text: await file.text() });
    input.value = "";
    flash(ok ? data.message : data.error || "Nothing was imported.", !ok);
    if (ok) setTimeout(() => location.reload(), 1500);
  }

  // -- wiring ----------------------------------------------------------------------------------------

  cards.forEach((card, i) => {
    card.saved = entered(card);
    card.addEventListener("click", () => { if (current !== i) select(i, false); });
    card.addEventListener("focusin", () => { if (current !== i) select(i, false); });
    $(card, "input.score").addEventListener("change", () => save(card));
    $(card, "input.comment").addEventListener("change", () => save(card));
    $(card, '[data-action="overwrite"]').addEventListener("click", () => overwrite(card));
    $(card, '[data-action="theirs"]').addEventListener("click", () => takeTheirs(card));
  });

  document.querySelectorAll("img.diagram").forEach((img) => {
    const broken = () => {
      const note = document.createElement("p");
      note.className = "error";
      note.textContent = img.alt + " could not be shown as an image (is it a valid PNG or SVG file?).";
      img.replaceWith(note);
    };
    if (img.complete && img.naturalWidth === 0) broken();
    else img.addEventListener("error", broken);
  });

  const helpButton = document.querySelector('[data-action="help"]');
  const toggleHelp = () => { const help = document.getElementById("help"); help.hidden = !help.hidden; };
  if (helpButton) helpButton.addEventListener("click", toggleHelp);
  const reportsButton = document.querySelector('[data-action="reports"]');
  if (reportsButton) reportsButton.addEventListener("click", writeReports);
  const importInput = document.querySelector('input[data-action="import"]');
  if (importInput) importInput.addEventListener("change", () => importFile(importInput));

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.matches("input.score, input.comment")) {
      if (event.key === "Enter" || event.key === "Escape") {
        event.preventDefault();
        const card = target.closest("article.card");
        save(card);
        card.focus({ preventScroll: true });
      }
      return;
    }
    if (target !== document.body && !target.matches("article.card")) return; // links, buttons, the file box
    const card = cards[current];
    const key = event.key;
    let handled = true;
    if (key === "j" || key === "ArrowDown") select(current + 1);
    else if (key === "k" || key === "ArrowUp") select(current - 1);
    else if (key === "n" || key === "Enter") nextPending();
    else if (key === "]") follow("next");
    else if (key === "[") follow("prev");
    else if (key === "g") location.href = base;
    else if (key === "?") toggleHelp();
    else if (key === "W" && reportsButton) writeReports();
    else if (card && /^[0-9]$/.test(key)) give(card, Number(key));
    else if (card && key === "c") $(card, "input.comment").focus();
    else if (card && key === "s") { if (unsaved.has(card)) save(card, true); else $(card, "input.score").focus(); }
    else if (card && key === "o") overwrite(card);
    else if (card && key === "r") takeTheirs(card);
    else handled = false;
    if (handled) event.preventDefault();
  });

  window.addEventListener("beforeunload", (event) => {
    if (unsaved.size) { event.preventDefault(); event.returnValue = ""; }
  });

  if (cards.length) {
    const wanted = cards.findIndex((card) => "#" + card.id === location.hash);
    const pending = cards.findIndex((card) => !card.classList.contains("scored"));
    select(wanted >= 0 ? wanted : pending >= 0 ? pending : 0);
  }
})();
