// Karavan newsroom: the live wire (server-sent events) and keyboard navigation (j / k / Enter), and an
// item page waiting for a body's translation. Text from items is only ever set with textContent; the
// one exception takes the server's own rendering of the page (its item HTML sanitised there), parsed
// inertly, and moves its nodes in.
"use strict";

(function () {
  const table = document.getElementById("wire");
  if (!table) return;
  const body = table.tBodies[0];
  let selected = -1;

  function select(index) {
    const rows = body.rows;
    if (rows.length === 0) return;
    selected = Math.max(0, Math.min(rows.length - 1, index));
    for (const row of rows) row.classList.remove("selected");
    const row = rows[selected];
    row.classList.add("selected");
    row.classList.remove("unread");
    const link = row.querySelector("a");
    if (link) link.focus();
  }

  function cell(text, className, lang) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (lang) td.lang = lang;
    td.textContent = text;
    return td;
  }

  // Times in the reader's time zone (the browser's): today's as the time of day, older ones with
  // their date; the full time in the tooltip.
  const locale = document.documentElement.lang || "en";
  function showTime(time) {
    const at = new Date(time.dateTime);
    if (isNaN(at.getTime())) return;
    const today = new Date();
    const sameDay = at.toDateString() === today.toDateString();
    const options = sameDay
      ? { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }
      : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    try {
      time.textContent = new Intl.DateTimeFormat(locale, options).format(at);
      time.title = new Intl.DateTimeFormat(locale, { dateStyle: "full", timeStyle: "long" }).format(at);
    } catch (error) {
      time.textContent = at.toLocaleString();
    }
  }
  for (const time of table.querySelectorAll("time[datetime]")) showTime(time);

  function badge(text, className) {
    const span = document.createElement("span");
    span.className = "badge " + className;
    span.textContent = text;
    return span;
  }

  function addRow(kind, data) {
    const meta = data.meta || {};
    const item = data.item || {};
    const id = meta.id || "";
    const old = body.querySelector('tr[data-id="' + CSS.escape(id) + '"]');
    if (old) old.remove();
    const row = document.createElement("tr");
    const urgency = item.urgency === undefined ? "" : String(item.urgency);
    row.className = kind + " unread" + (item.urgency !== undefined && item.urgency <= 2 ? " flash" : "");
    row.dataset.id = id;
    row.dataset.cursor = meta.cursor || "";
    const time = document.createElement("time");
    time.dateTime = item.versionCreated || meta.receivedAt || "";
    showTime(time);
    const timeCell = document.createElement("td");
    timeCell.className = "time";
    timeCell.appendChild(time);
    row.appendChild(timeCell);
    row.appendChild(cell(urgency, "urgency u" + urgency));
    row.appendChild(cell(meta.memberName || meta.member || "", "member"));
    const language = item.language || "";
    row.appendChild(cell(language, "language", language));
    const headlineCell = cell("", "headline");
    if (kind === "kill") headlineCell.appendChild(badge(table.dataset.killed || "", "kill"));
    if (kind === "correction") headlineCell.appendChild(badge(table.dataset.correction || "", "correction"));
    const link = document.createElement("a");
    link.href = "/items/" + encodeURIComponent(id);
    if (language) link.lang = language;
    const headlines = item.headlines || [];
    link.textContent = headlines.length ? headlines[0].value : id;
    headlineCell.appendChild(link);
    row.appendChild(headlineCell);
    body.insertBefore(row, body.firstChild);
    if (selected >= 0) selected += 1;
    const empty = document.querySelector(".empty");
    if (empty) empty.remove();
  }

  const stream = table.dataset.stream ? new EventSource(table.dataset.stream) : null;
  for (const kind of stream ? ["publish", "correction", "kill"] : []) {
    stream.addEventListener(kind, function (event) {
      try {
        addRow(kind, JSON.parse(event.data));
      } catch (error) {
        console.error("live wire event", error);
      }
    });
  }

  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT")) return;
    if (event.key === "j") { select(selected + 1); event.preventDefault(); }
    else if (event.key === "k") { select(selected - 1); event.preventDefault(); }
    else if (event.key === "Enter" && selected >= 0) {
      const link = body.rows[selected] && body.rows[selected].querySelector("a");
      if (link) { window.location.href = link.href; event.preventDefault(); }
    }
  });
})();

// The publishing form's rich-text editor: a contenteditable area that writes its HTML back into the
// form's textarea on submit (the server sanitises it). Without scripts the textarea takes plain text.
(function () {
  const toolbar = document.querySelector(".editor-toolbar");
  if (!toolbar) return;
  const textarea = document.getElementById(toolbar.dataset.for);
  const form = textarea.form;
  const editor = document.createElement("div");
  editor.className = "editor";
  editor.contentEditable = "true";
  editor.setAttribute("role", "textbox");
  editor.setAttribute("aria-multiline", "true");
  editor.setAttribute("aria-labelledby", "body-label");
  const label = document.querySelector('label[for="' + textarea.id + '"]');
  if (label) { label.id = "body-label"; label.htmlFor = ""; }
  // The textarea holds HTML when correcting an item; parse it inertly, keep only the text structure.
  // Cleaned while still in the inert parsed document, before anything enters the page.
  const parsed = new DOMParser().parseFromString(textarea.value, "text/html");
  for (const element of parsed.body.querySelectorAll("script, style, iframe, object, embed, img, svg, math")) element.remove();
  for (const element of parsed.body.querySelectorAll("*")) {
    for (const attribute of Array.from(element.attributes)) element.removeAttribute(attribute.name);
  }
  for (const node of Array.from(parsed.body.childNodes)) editor.appendChild(document.importNode(node, true));
  textarea.hidden = true;
  textarea.parentNode.insertBefore(editor, textarea);
  toolbar.hidden = false;
  for (const button of toolbar.querySelectorAll("button")) {
    button.addEventListener("click", function () {
      editor.focus();
      document.execCommand(button.dataset.command, false, null);
    });
  }
  form.addEventListener("submit", function () { textarea.value = editor.innerHTML; });
})();

// An item page whose body's translation is still to come: the status line follows the server's
// events, and when the translation is stored the page's translated body (and the rest of its text)
// replaces what is shown, without a reload. Without scripts the page says where the translation
// stands, and reloading it shows the body once done.
(function () {
  const status = document.querySelector("[data-translation-stream]");
  if (!status) return;
  const stream = new EventSource(status.dataset.translationStream);
  stream.addEventListener("status", function (event) {
    try { status.textContent = JSON.parse(event.data).text; } catch (error) { console.error("translation status", error); }
  });
  stream.addEventListener("failed", function (event) {
    stream.close();
    try { status.textContent = JSON.parse(event.data).text; } catch (error) { console.error("translation status", error); }
    const pending = status.closest(".translation-pending");
    if (pending) pending.classList.add("failed");
  });
  stream.addEventListener("done", function () {
    stream.close();
    fetch(window.location.href, { credentials: "same-origin", headers: { accept: "text/html" } })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        // Parsed inertly (no script runs, nothing loads); only nodes of the server's rendering move in.
        const page = new DOMParser().parseFromString(html, "text/html");
        for (const selector of [".item h1", ".item .lead", ".item .body", ".item .machine-translation"]) {
          const fresh = page.querySelector(selector);
          const old = document.querySelector(selector);
          if (fresh && old) old.replaceWith(document.importNode(fresh, true));
        }
        const pending = document.querySelector(".translation-pending");
        const still = page.querySelector(".translation-pending");
        if (pending && still) pending.replaceWith(document.importNode(still, true));
        else if (pending) pending.remove();
      })
      .catch(function (error) { console.error("translated body", error); });
  });
})();
