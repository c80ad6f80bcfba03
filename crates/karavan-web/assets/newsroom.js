// Karavan newsroom: the live wire (server-sent events) and keyboard navigation (j / k / Enter), and an
// item page waiting for a body's translation. Text from items is only ever set with textContent; the
// one exception takes the server's own rendering of the page (its item HTML sanitised there), parsed
// inertly, and moves its nodes in.
"use strict";

(function () {
  // The filter form says the reader's time zone, so that a day is the reader's day.
  for (const input of document.querySelectorAll("input[data-timezone-offset]")) {
    input.value = String(new Date().getTimezoneOffset());
  }
  // On a narrow screen the filters start folded unless some are in use.
  const filters = document.getElementById("wire-filters");
  if (filters && window.matchMedia("(max-width: 56rem)").matches && !window.location.search.match(/[?&](member|lang|subject|urgency|day|kills)=[^&]/)) {
    filters.open = false;
  }
})();

(function () {
  const table = document.getElementById("wire");
  if (!table) return;
  const body = table.tBodies[0];
  const pane = document.getElementById("reading-pane");
  const paneContent = pane ? pane.querySelector(".pane-content") : null;
  let selected = -1;
  let loading = null;

  // The pane shows when the screen is wide enough for it (the stylesheet decides).
  function paneShown() {
    return pane && window.getComputedStyle(pane).display !== "none";
  }

  function paneMessage(text, className) {
    const p = document.createElement("p");
    p.className = className;
    p.textContent = text;
    paneContent.replaceChildren(p);
  }

  // The item's page, fetched with the session, parsed inertly (no script runs, nothing loads); only
  // the server's own rendering of the item (its HTML sanitised there) moves into the pane.
  function showInPane(link) {
    if (!paneShown() || !link) return;
    if (loading) loading.abort();
    const controller = new AbortController();
    loading = controller;
    pane.setAttribute("aria-busy", "true");
    paneMessage(pane.dataset.loading || "", "pane-empty");
    fetch(link.href, { credentials: "same-origin", headers: { accept: "text/html" }, signal: controller.signal })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        const page = new DOMParser().parseFromString(html, "text/html");
        const article = page.querySelector("article.item");
        if (!article) throw new Error("no item in the page");
        for (const form of article.querySelectorAll("form, .item-actions")) form.remove();
        const open = document.createElement("p");
        open.className = "pane-open";
        const anchor = document.createElement("a");
        anchor.href = link.href;
        anchor.textContent = pane.dataset.open || "";
        open.appendChild(anchor);
        const nodes = [open, document.importNode(article, true)];
        const similar = page.querySelector(".similar");
        if (similar) nodes.push(document.importNode(similar, true));
        // Headings in the pane sit below the page's own.
        for (const node of nodes) {
          if (!node.querySelectorAll) continue;
          for (const heading of node.querySelectorAll("h1, h2")) {
            const level = heading.tagName === "H1" ? "h2" : "h3";
            const replacement = document.createElement(level);
            for (const attribute of Array.from(heading.attributes)) replacement.setAttribute(attribute.name, attribute.value);
            replacement.append(...heading.childNodes);
            heading.replaceWith(replacement);
          }
        }
        paneContent.replaceChildren(...nodes);
        pane.scrollTop = 0;
      })
      .catch(function (error) {
        if (error.name === "AbortError") return;
        console.error("reading pane", error);
        paneMessage(pane.dataset.failed || "", "error");
      })
      .finally(function () { if (loading === controller) { loading = null; pane.removeAttribute("aria-busy"); } });
  }

  function select(index, focus) {
    const rows = body.rows;
    if (rows.length === 0) return;
    selected = Math.max(0, Math.min(rows.length - 1, index));
    for (const row of rows) row.classList.remove("selected");
    const row = rows[selected];
    row.classList.add("selected");
    row.classList.remove("unread");
    const link = row.querySelector("td.headline a");
    if (link && focus !== false) link.focus();
    showInPane(link);
  }

  // A click on a row (or its headline) on a wide screen reads it in the pane; a click with a
  // modifier, or on a narrow screen, opens the item as a link does.
  body.addEventListener("click", function (event) {
    if (!paneShown() || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    const row = event.target.closest("tr");
    if (!row) return;
    event.preventDefault();
    select(Array.prototype.indexOf.call(body.rows, row), true);
  });

  function cell(text, className, lang) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (lang) td.lang = lang;
    td.textContent = text;
    return td;
  }

  // Times in the reader's time zone (their setting, else the browser's): the last hour's as "12 min
  // ago", the rest of today's as the time of day, older ones with their date; the full time in the
  // tooltip.
  const locale = document.documentElement.lang || "en";
  const zone = document.documentElement.dataset.timeZone || undefined;
  function inZone(options) {
    return zone ? Object.assign({ timeZone: zone }, options) : options;
  }
  // The calendar day of a moment in the reader's zone.
  let dayFormat = null;
  function dayOf(at) {
    try {
      dayFormat = dayFormat || new Intl.DateTimeFormat("en-CA", inZone({ year: "numeric", month: "2-digit", day: "2-digit" }));
      return dayFormat.format(at);
    } catch (error) {
      return at.toDateString();
    }
  }
  // "12 min ago" in the UI language, from the page's own messages (browsers lack some of ours).
  // Whether the browser has this language's calendar data (else older rows keep the server's text).
  const dates = Intl.DateTimeFormat.supportedLocalesOf([locale]).length > 0;
  function relative(minutes) {
    if (minutes < 1) return table.dataset.justNow || "";
    return (table.dataset.minutesAgo || "%n").replace("%n", String(minutes));
  }
  function showTime(time) {
    const at = new Date(time.dateTime);
    if (isNaN(at.getTime())) return;
    const now = new Date();
    const sameDay = dayOf(at) === dayOf(now);
    const minutes = Math.floor((now.getTime() - at.getTime()) / 60000);
    const options = sameDay
      ? { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }
      : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    if (!(sameDay && minutes >= 0 && minutes < 60) && !dates) return;
    try {
      time.textContent = sameDay && minutes >= 0 && minutes < 60
        ? relative(minutes)
        : new Intl.DateTimeFormat(locale, inZone(options)).format(at);
      time.title = new Intl.DateTimeFormat(locale, inZone({ dateStyle: "full", timeStyle: "long" })).format(at);
    } catch (error) {
      time.textContent = at.toLocaleString();
    }
  }
  function showTimes() {
    for (const time of table.querySelectorAll("time[datetime]")) showTime(time);
  }
  showTimes();
  window.setInterval(showTimes, 60000);

  function badge(text, className) {
    const span = document.createElement("span");
    span.className = "badge " + className;
    span.textContent = text;
    return span;
  }

  function addRow(kind, data) {
    // A view of one kind (kill notices only) takes only live rows of that kind.
    if (table.dataset.only && table.dataset.only !== kind) return;
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
    if (language && language.split("-")[0] !== locale.split("-")[0]) awaitHeadline(id);
    if (selected >= 0) selected += 1;
    const empty = document.querySelector(".empty");
    if (empty) empty.remove();
  }

  // A live row in another language gets its headline in the UI language once the server has
  // translated it (within seconds of the item being stored): asked for every two seconds, for a
  // minute at most, all waiting rows at once.
  const waiting = new Map();
  let polling = null;
  function awaitHeadline(id) {
    waiting.set(id, Date.now());
    if (!polling) polling = window.setInterval(pollHeadlines, 2000);
  }
  function pollHeadlines() {
    for (const [id, since] of waiting) if (Date.now() - since > 60000) waiting.delete(id);
    if (waiting.size === 0) { window.clearInterval(polling); polling = null; return; }
    const ids = Array.from(waiting.keys()).slice(0, 50);
    fetch("/wire/headlines?ids=" + encodeURIComponent(ids.join(",")), { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        for (const [id, found] of Object.entries(answer.headlines || {})) {
          waiting.delete(id);
          const row = body.querySelector('tr[data-id="' + CSS.escape(id) + '"]');
          const link = row && row.querySelector("td.headline a");
          if (!link) continue;
          link.title = link.textContent;
          link.textContent = found.headline;
          link.lang = found.language;
          link.href = "/items/" + encodeURIComponent(id) + "?lang=" + encodeURIComponent(found.language);
          const mark = document.createElement("abbr");
          mark.className = "badge mt";
          mark.title = (table.dataset.machineTranslation || "%m").replace("%m", found.model);
          mark.textContent = table.dataset.mt || "MT";
          link.after(mark);
        }
      })
      .catch(function (error) { console.error("translated headlines", error); });
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
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT")) return;
    if (event.key === "j") { select(selected + 1); event.preventDefault(); }
    else if (event.key === "k") { select(selected - 1); event.preventDefault(); }
    else if (event.key === "n" || event.key === "p") {
      // Paging: n to older items, p back to the newest.
      const link = document.querySelector('.pager a[data-key="' + event.key + '"]');
      if (link) { window.location.href = link.href; event.preventDefault(); }
    }
    else if (event.key === "Enter" && selected >= 0) {
      const link = body.rows[selected] && body.rows[selected].querySelector("td.headline a");
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

// The item page: the original beside its translation on wide screens (one click away on narrow
// ones), and copying the text with its credit line for republishing.
(function () {
  if (window.matchMedia("(min-width: 64rem)").matches) {
    for (const details of document.querySelectorAll("details[data-wide-open]")) details.open = true;
  }
  for (const button of document.querySelectorAll("button[data-copy-item]")) {
    const article = button.closest("article");
    if (!article || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", function () {
      // The text as shown (headline, lead, body), then the credit line the page gives.
      const parts = [];
      for (const selector of ["h1", ".shown .lead", ".shown .body"]) {
        const element = article.querySelector(selector);
        if (element && element.innerText.trim()) parts.push(element.innerText.trim());
      }
      const credit = article.querySelector(".credit");
      if (credit) parts.push(credit.textContent.trim());
      navigator.clipboard.writeText(parts.join("\n\n")).then(function () {
        const said = button.parentNode.querySelector(".copied");
        if (said) said.textContent = button.dataset.copied || "";
      }).catch(function (error) { console.error("copy", error); });
    });
  }
})();

// The language switch keeps the page and its state: the query, filters, the script choice, a
// correction in progress (what the URL holds). Without scripts it switches on the same page.
(function () {
  const form = document.querySelector("form.language");
  if (!form) return;
  const select = form.querySelector("select[name=ui]");
  form.addEventListener("submit", function (event) {
    const url = new URL(window.location.href);
    url.searchParams.set("ui", select.value);
    event.preventDefault();
    window.location.href = url.pathname + url.search + url.hash;
  });
})();

// Every other time on a page (item pages, versions, search hits, delivery logs) in the reader's time
// zone (their setting, else the browser's) and the UI language, as the wire shows older rows; the
// full time in the tooltip. Without scripts the server's text stays (in the user's zone, else UTC).
(function () {
  const locale = document.documentElement.lang || "en";
  const zone = document.documentElement.dataset.timeZone || undefined;
  function inZone(options) {
    return zone ? Object.assign({ timeZone: zone }, options) : options;
  }
  // A browser without this language's calendar data keeps the server's text (in UTC).
  if (Intl.DateTimeFormat.supportedLocalesOf([locale]).length === 0) return;
  for (const time of document.querySelectorAll("time[datetime]")) {
    if (time.closest("#wire")) continue;
    const at = new Date(time.dateTime);
    if (isNaN(at.getTime())) continue;
    try {
      time.textContent = new Intl.DateTimeFormat(locale, inZone({
        year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
      })).format(at);
      time.title = new Intl.DateTimeFormat(locale, inZone({ dateStyle: "full", timeStyle: "long" })).format(at);
    } catch (error) {
      console.error("time", error);
    }
  }
})();

// The user's time-zone setting names the browser's own zone beside the choice.
(function () {
  const shown = document.querySelector("[data-browser-zone]");
  if (!shown) return;
  try {
    shown.textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (error) {
    shown.textContent = "";
  }
})();

// A form that cannot be undone (kill, revoke, delete, disable, a new feed URL) asks in a modal
// dialog. The form is posted as it is, without `confirm`: the server does nothing then, and answers
// with its confirmation step, whose form (it carries `confirm=yes`) is shown in the dialog and posted
// from there as a page. Without scripts, or when the answer is anything else, the step is a page.
(function () {
  if (typeof HTMLDialogElement !== "function") return;
  function plainSubmit(form) {
    form.dataset.confirmAsked = "yes";
    HTMLFormElement.prototype.submit.call(form);
  }
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.confirmAsked === "yes") return;
      event.preventDefault();
      const opener = event.submitter || form.querySelector("button[type=submit]");
      fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { accept: "text/html" },
        body: new URLSearchParams(new FormData(form)),
      })
        .then(function (response) { return response.text(); })
        .then(function (html) {
          const page = new DOMParser().parseFromString(html, "text/html");
          const step = page.querySelector("section.confirm");
          if (!step) return plainSubmit(form);
          const content = document.importNode(step, true);
          content.removeAttribute("role");
          const title = content.querySelector("h1");
          if (title) {
            const heading = document.createElement("h2");
            heading.id = title.id;
            heading.append(...title.childNodes);
            title.replaceWith(heading);
          }
          const dialog = document.createElement("dialog");
          dialog.className = "confirm-dialog";
          dialog.setAttribute("role", "alertdialog");
          dialog.setAttribute("aria-modal", "true");
          dialog.setAttribute("aria-labelledby", "confirm-title");
          dialog.setAttribute("aria-describedby", "confirm-question");
          dialog.appendChild(content);
          const cancel = content.querySelector(".confirm-actions a");
          if (cancel) {
            cancel.setAttribute("role", "button");
            cancel.addEventListener("click", function (click) {
              click.preventDefault();
              dialog.close();
            });
          }
          dialog.addEventListener("close", function () {
            dialog.remove();
            if (opener) opener.focus();
          });
          document.body.appendChild(dialog);
          dialog.showModal();
          const first = content.querySelector("input:not([type=hidden]), button[type=submit]");
          if (first) first.focus();
        })
        .catch(function () { plainSubmit(form); });
    });
  }
})();

// Files over the server's limit are refused at the field before anything is sent.
(function () {
  const input = document.querySelector("input[type=file][data-max-bytes]");
  const said = document.getElementById("upload-error");
  if (!input || !said) return;
  const max = Number(input.dataset.maxBytes);
  function tooLarge() {
    // The form's other fields and the multipart framing need a little room too.
    let total = 4096;
    for (const file of input.files) total += file.size + 512;
    return max > 0 && total > max;
  }
  function check() {
    const over = tooLarge();
    said.hidden = !over;
    input.setAttribute("aria-invalid", over ? "true" : "false");
    return over;
  }
  input.addEventListener("change", check);
  input.form.addEventListener("submit", function (event) {
    if (check()) {
      event.preventDefault();
      input.focus();
    }
  });
})();
