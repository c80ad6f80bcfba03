// The web newsroom in a real browser (Debian's chromium driven by playwright-core).
// Run by crates/karavan/tests/browser.rs with: KARAVAN_BASE, KARAVAN_EMAIL, KARAVAN_PASSWORD, KARAVAN_KEY,
// KARAVAN_SCREENSHOTS (a folder), and NODE_PATH pointing at playwright-core's node_modules.
import { createRequire } from "node:module";
import assert from "node:assert/strict";
import { readFileSync, mkdirSync } from "node:fs";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");
const { KARAVAN_BASE: base, KARAVAN_EMAIL: email, KARAVAN_PASSWORD: password, KARAVAN_KEY: key, KARAVAN_SCREENSHOTS: shots } = process.env;

async function publish(item) {
  const response = await fetch(`${base}/v1/items`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(item),
  });
  const text = await response.text();
  assert.equal(response.status, 201, text);
  return JSON.parse(text);
}

// Accessibility basics of a page: a language, every control labelled, every button named, every image
// described, no positive tabindex (focus follows the page order), one h1.
async function checkAccessible(page, name) {
  const problems = await page.evaluate(() => {
    const found = [];
    if (!document.documentElement.lang) found.push("no lang on html");
    for (const control of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
      if (control.hidden || control.closest("[hidden]")) continue;
      const labelled = (control.labels && control.labels.length > 0) || control.getAttribute("aria-label") || control.getAttribute("aria-labelledby");
      if (!labelled) found.push(`unlabelled ${control.tagName.toLowerCase()} ${control.name || control.id}`);
    }
    for (const button of document.querySelectorAll("button")) {
      if (!button.textContent.trim() && !button.getAttribute("aria-label")) found.push("a button without a name");
    }
    for (const image of document.querySelectorAll("img")) if (!image.hasAttribute("alt")) found.push("an image without alt");
    for (const element of document.querySelectorAll("[tabindex]")) if (Number(element.getAttribute("tabindex")) > 0) found.push("a positive tabindex");
    if (document.querySelectorAll("h1").length !== 1) found.push(`${document.querySelectorAll("h1").length} h1 elements`);
    return found;
  });
  assert.deepEqual(problems, [], `accessibility of ${name}`);
}

// axe-core's rules on the page as it is (injected through the devtools protocol, which the page's
// Content-Security-Policy does not govern): any serious or critical violation fails.
const axeSource = readFileSync(`${process.env.NODE_PATH}/axe-core/axe.min.js`, "utf8");
async function checkAxe(page, name) {
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ")}`);
  });
  assert.deepEqual(violations, [], `axe on ${name}`);
}

// What a person at a screen of this width sees: the page in its language, nothing wider than the
// screen (no sideways scrolling), one visible h1.
async function checkLayout(page, name, code) {
  assert.equal(await page.locator("html").getAttribute("lang"), code, `lang of ${name}`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${name} is ${overflow}px wider than the screen`);
  assert.ok(await page.locator("h1").first().isVisible(), `the heading of ${name} shows`);
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
try {
  const context = await browser.newContext({ locale: "en-US", timezoneId: "UTC", viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const dialogs = [];
  page.on("dialog", (dialog) => { dialogs.push(dialog.message()); dialog.dismiss(); });
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("console", (message) => console.error(`console ${message.type()}: ${message.text()}`));
  page.on("requestfailed", (request) => console.error(`request failed: ${request.url()} ${request.failure()?.errorText}`));

  // Sign in.
  await page.goto(`${base}/`);
  assert.match(page.url(), /\/login/);
  await checkAccessible(page, "the sign-in page");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/`);
  await page.getByRole("heading", { name: "Wire" }).waitFor();
  await checkAccessible(page, "the wire");
  await page.screenshot({ path: `${shots}/wire.png`, fullPage: true });

  // An item published through the API arrives on the live wire, unread, without a reload.
  await publish({ uri: "urn:browser:1", language: "kk", urgency: 1, headlines: [{ value: "Қорғаста жаңа терминал ашылды" }] });
  const row = page.locator("#wire tbody tr", { hasText: "Қорғаста жаңа терминал ашылды" });
  await row.waitFor({ timeout: 10000 });
  assert.ok((await row.getAttribute("class")).includes("unread"));
  // j selects the newest row and marks it read.
  await page.keyboard.press("j");
  assert.ok((await row.getAttribute("class")).includes("selected"));

  // A script-laden headline is shown as text, and nothing runs.
  await publish({ uri: "urn:browser:xss", language: "en", headlines: [{ value: "<img src=x onerror=alert('xss')><script>alert('xss')</script>Evil" }] });
  const evil = page.locator("#wire tbody tr", { hasText: "Evil" });
  await evil.waitFor({ timeout: 10000 });
  await page.reload();
  await page.locator("#wire tbody tr", { hasText: "Evil" }).waitFor();
  assert.equal(await page.locator("#wire img").count(), 0, "no element from the headline");
  assert.deepEqual(dialogs, [], "no script from an item ran");

  // The item page: the body's HTML is sanitised (nothing runs), the history lists every version.
  const dirty = await publish({
    uri: "urn:browser:body", language: "en", headlines: [{ value: "Body test" }],
    bodies: [{ contentType: "text/html", value: "<p>Safe paragraph</p><script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\"><a href=\"javascript:window.__xss=3\">link</a>" }],
  });
  await publish({
    uri: "urn:browser:body", version: "2", language: "en", headlines: [{ value: "Body test, corrected" }],
    bodies: [{ contentType: "text/html", value: "<p>Safe paragraph, corrected</p><script>window.__xss = 1</script>" }],
  });
  await page.goto(`${base}/items/${dirty.id}`);
  await page.getByRole("heading", { name: "Body test, corrected" }).waitFor();
  assert.ok(await page.getByText("Safe paragraph, corrected").isVisible());
  assert.equal(await page.locator("article script").count(), 0);
  assert.equal(await page.evaluate(() => window.__xss), undefined, "no item script ran");
  assert.equal(await page.locator(".versions li").count(), 2, "both versions are listed");
  await checkAccessible(page, "the item page");
  await page.screenshot({ path: `${shots}/item.png`, fullPage: true });
  // A translated item page: the headline at once, the body's translation queued (this read moved its
  // job to the front: the member reads no other language, so there was none), then the translated
  // body taken in without a reload once a worker has stored it.
  const chinese = await publish({
    uri: "urn:browser:zh", language: "zh", headlines: [{ value: "北京今天天气晴朗" }],
    bodies: [{ contentType: "text/html", value: "<p>气温将升至三十度。明天有小雨。</p>" }],
  });
  const firstLoad = await page.goto(`${base}/items/${chinese.id}?lang=kk`);
  const firstHtml = await firstLoad.text();
  // For a person to look at: most likely still waiting (the body may already have been taken in).
  await page.screenshot({ path: `${shots}/item-translation-pending.png`, fullPage: true });
  assert.match(firstHtml, /Body translation queued|Translating the body/, "the page says where the body stands");
  assert.match(firstHtml, /<div class="body" lang="zh">/, "the original body meanwhile");
  assert.match(firstHtml, /Machine translation from zh by hf-nllb-2x2/);
  // (The random model's "translation" of the body is empty paragraphs: present, but not visible.)
  await page.locator('.item .body[lang="kk"]').waitFor({ state: "attached", timeout: 30000 });
  assert.equal(await page.locator(".item .body").count(), 1);
  assert.equal(await page.locator(".translation-pending").count(), 0, "the status line is gone");
  assert.equal(await page.locator('.translate a[aria-current="true"]').count(), 0, "no read language to link");
  await checkAccessible(page, "a translated item page");
  await page.screenshot({ path: `${shots}/item-translated.png`, fullPage: true });
  // The wire row opens the item with Enter.
  await page.goto(`${base}/`);
  await page.keyboard.press("j");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/items\/itm_/);

  // Language: an item without a language is identified, shown in Latin on request, and its
  // similar stories in other languages are listed; a mislabelled item is flagged.
  const uzbek = await publish({
    uri: "urn:browser:uz", headlines: [{ value: "Тошкентдан Алматига янги поезд йўлга чиқди" }],
    bodies: [{ contentType: "text/html", value: "<p>Ўзбекистон ва Қозоғистон ўртасида янги йўловчи поезди қатнови бошланди.</p>" }],
  });
  await publish({
    uri: "urn:browser:kk-train", language: "kk", headlines: [{ value: "Алматы мен Ташкент арасында жаңа пойыз қатынай бастады" }],
    bodies: [{ contentType: "text/html", value: "<p>Қазақстан мен Өзбекстан арасындағы жаңа жолаушылар пойызы алғашқы рейсіне шықты.</p>" }],
  });
  const mislabelled = await publish({
    uri: "urn:browser:mislabelled", language: "ru", headlines: [{ value: "Астанада халықаралық кітап көрмесі ашылды" }],
    bodies: [{ contentType: "text/html", value: "<p>Көрмеге отыздан астам елдің баспалары қатысып отыр.</p>" }],
  });
  await page.goto(`${base}/items/${uzbek.id}`);
  await page.getByText("Language identified from the text: uz-Cyrl").waitFor();
  await page.getByRole("link", { name: "Latin", exact: true }).click();
  await page.getByRole("heading", { name: "Toshkentdan Almatiga yangi poyezd yo‘lga chiqdi" }).waitFor();
  assert.ok(await page.getByText("O‘zbekiston va Qozog‘iston o‘rtasida yangi yo‘lovchi poyezdi qatnovi boshlandi.").isVisible());
  // The similar stories appear once the item is embedded (in the background, within seconds).
  const similar = page.locator(".similar a", { hasText: "Алматы мен Ташкент арасында жаңа пойыз қатынай бастады" });
  for (let attempt = 0; attempt < 60 && (await similar.count()) === 0; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    await page.reload();
  }
  assert.ok(await similar.isVisible(), "the Kazakh story is listed as similar");
  await checkAccessible(page, "the item page in Latin");
  await page.screenshot({ path: `${shots}/item-latin.png`, fullPage: true });
  await page.goto(`${base}/items/${mislabelled.id}`);
  await page.locator(".language-flag", { hasText: "Declared as ru, but the text reads as kk" }).waitFor();
  // Searching by meaning: a Chinese query finds the Kazakh and Uzbek train stories.
  await page.goto(`${base}/search`);
  await page.getByLabel("Search the wire").fill("乌兹别克斯坦和哈萨克斯坦之间的新客运列车");
  await page.getByLabel("Ranking").selectOption("semantic");
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await page.waitForURL(/mode=semantic/);
  const top = await page.locator(".hit h2").first().textContent();
  assert.ok(/пойыз|поезд/.test(top), `the top semantic hit is a train story: ${top}`);
  await page.screenshot({ path: `${shots}/search-semantic.png`, fullPage: true });

  // Search: the query finds the item across scripts' folding, with a snippet, facets and a link.
  await page.goto(`${base}/search?q=${encodeURIComponent("терминал")}`);
  const hit = page.locator(".hit", { hasText: "Қорғаста жаңа терминал ашылды" });
  await hit.waitFor();
  assert.ok((await hit.locator(".snippet b").count()) >= 1, "the match is marked in the snippet");
  assert.ok(await page.locator(".facets").getByText("Kazinform").isVisible());
  // The member filter keeps the same hit (every item here is Kazinform's).
  await page.locator("#member").selectOption({ label: "Kazinform" });
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await page.waitForURL(/member=mbr_/);
  await page.locator(".hit", { hasText: "Қорғаста жаңа терминал ашылды" }).waitFor();
  await page.locator("#member").selectOption({ label: "Kabar" });
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await page.waitForURL(/member=mbr_/);
  assert.equal(await page.locator(".hit").count(), 0, "nothing from another member");
  await page.locator("#member").selectOption({ label: "Any agency" });
  await page.getByLabel("Search the wire").fill("Evil");
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await page.locator(".hit", { hasText: "Evil" }).waitFor();
  assert.equal(await page.locator(".results img").count(), 0);
  assert.deepEqual(dialogs, [], "no script from a search hit ran");
  await page.getByLabel("Name of the search").fill("Evil things");
  await page.getByRole("button", { name: "Save this search" }).click();
  await page.getByRole("link", { name: "Evil things" }).waitFor();
  await checkAccessible(page, "the search page");
  await page.screenshot({ path: `${shots}/search.png`, fullPage: true });

  // Subscriptions: create one from the form, see its feed URL once, then its delivery log.
  await page.goto(`${base}/subscriptions`);
  await checkAccessible(page, "the subscriptions page");
  await page.getByLabel("Name").fill("Terminals");
  await page.getByLabel("Search query").fill("терминал");
  await page.getByRole("button", { name: "Create subscription" }).click();
  const feedUrl = await page.getByLabel("Atom feed").inputValue();
  assert.match(feedUrl, /\/feeds\/kft_[0-9a-f]{64}$/);
  const feed = await fetch(feedUrl);
  assert.equal(feed.status, 200);
  await publish({ uri: "urn:browser:terminal2", language: "kk", headlines: [{ value: "Екінші терминал салынады" }] });
  await page.getByRole("link", { name: "Terminals" }).click();
  await page.locator(".deliveries tbody tr").first().waitFor({ timeout: 1000 }).catch(() => {});
  for (let tries = 0; tries < 20 && (await page.locator(".deliveries tbody tr").count()) === 0; tries++) {
    await page.waitForTimeout(250);
    await page.reload();
  }
  assert.equal(await page.locator(".deliveries tbody tr").count(), 1, "the new item was delivered to the feed");
  await checkAccessible(page, "a subscription");
  await page.screenshot({ path: `${shots}/subscription.png`, fullPage: true });
  // A new feed URL is asked for in a modal dialog first (the old one stops working).
  await page.getByRole("button", { name: "New feed URL" }).click();
  await page.getByRole("alertdialog").getByText("Everyone reading the old one").waitFor();
  await page.getByRole("alertdialog").getByRole("button", { name: "New feed URL" }).click();
  await page.getByRole("alertdialog").waitFor({ state: "detached" });
  const rotated = await page.getByLabel("Atom feed").inputValue();
  assert.notEqual(rotated, feedUrl);
  assert.equal((await fetch(feedUrl)).status, 404, "the old feed URL stops working");
  assert.equal((await fetch(rotated)).status, 200);
  await page.getByLabel("Name").fill("Terminals and stations");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByRole("heading", { name: "Terminals and stations" }).waitFor();
  // Deleting asks first in a modal dialog (Cancel closes it and changes nothing), then deletes.
  await page.getByRole("button", { name: "Delete subscription" }).click();
  const asking = page.getByRole("alertdialog");
  await asking.getByText("Delete this subscription? Its deliveries stop.").waitFor();
  assert.ok(await page.locator("dialog.confirm-dialog[open]").evaluate((d) => d.matches(":modal")), "a modal dialog");
  await checkAccessible(page, "a confirmation");
  await checkAxe(page, "a confirmation");
  await page.screenshot({ path: `${shots}/confirm.png`, fullPage: true });
  await asking.getByRole("button", { name: "Cancel" }).click();
  await asking.waitFor({ state: "detached" });
  assert.ok(await page.getByRole("button", { name: "Delete subscription" }).evaluate((b) => b === document.activeElement), "focus returns");
  await page.getByRole("heading", { name: "Terminals and stations" }).waitFor();
  await page.getByRole("button", { name: "Delete subscription" }).click();
  await page.getByRole("alertdialog").getByRole("button", { name: "Delete subscription" }).click();
  await page.waitForURL(`${base}/subscriptions`);
  assert.equal(await page.getByRole("link", { name: "Terminals and stations" }).count(), 0);

  // Publishing from the form with the rich-text editor, then correcting and killing from the item page.
  await page.goto(`${base}/publish`);
  await checkAccessible(page, "the publishing form");
  await page.getByLabel("Headline").fill("Жаңа вокзал ашылды");
  await page.getByLabel("Other subjects").fill("transport");
  await page.getByRole("checkbox", { name: "economy, business and finance" }).check();
  await page.getByLabel("Summary").fill("Қалада жаңа вокзал ашылды.");
  await page.getByLabel("Byline").fill("Aigerim");
  await page.getByLabel("Genre").selectOption({ label: "Current news" });
  await page.getByLabel("Place").fill("Алматы");
  await page.getByLabel("Usage terms").fill("For exchange members only");
  await page.locator(".editor").click();
  await page.keyboard.type("Бірінші абзац. ");
  await page.getByRole("button", { name: "Bold" }).click();
  await page.keyboard.type("Маңызды");
  // A preview first: the item as partners will see it, the form kept as filled.
  await page.getByRole("button", { name: "Preview" }).click();
  await page.getByRole("heading", { name: "Preview: this is how partners will see the item" }).waitFor();
  assert.ok(await page.locator(".preview").getByText("Қалада жаңа вокзал ашылды.").isVisible());
  assert.ok(await page.locator(".preview .subject", { hasText: "economy, business and finance" }).isVisible());
  assert.equal(await page.getByLabel("Place").inputValue(), "Алматы");
  await checkAccessible(page, "a preview");
  await page.screenshot({ path: `${shots}/publish-preview.png`, fullPage: true });
  await page.getByRole("button", { name: "Publish", exact: true }).click();
  await page.waitForURL(/\/items\/itm_/);
  await page.getByRole("heading", { name: "Жаңа вокзал ашылды" }).waitFor();
  assert.ok(await page.locator(".body b, .body strong").first().isVisible(), "the bold text survives, cleanly");
  assert.ok(await page.getByText("For exchange members only", { exact: true }).isVisible(), "the usage terms are shown");
  assert.ok(await page.locator(".facts").getByText("Current news").isVisible(), "the genre by name");
  assert.ok(await page.locator(".facts").getByText("Алматы").isVisible(), "the place");
  assert.ok(await page.locator(".subject", { hasText: "economy, business and finance" }).isVisible());
  // Republishing: the credit line, and the text with it to copy (the owner may republish).
  assert.match(await page.locator(".republish .credit").textContent(), /^Source: Kazinform — For exchange members only$/);
  await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  await page.getByRole("button", { name: "Copy text with credit line" }).click();
  await page.getByText("Copied to the clipboard.").waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.ok(copied.startsWith("Жаңа вокзал ашылды") && copied.endsWith("Source: Kazinform — For exchange members only"), copied);
  const published = page.url();
  await page.getByRole("link", { name: "Correct this item" }).click();
  // The correction form keeps every field of the item.
  assert.equal(await page.getByLabel("Summary").inputValue(), "Қалада жаңа вокзал ашылды.");
  assert.ok(await page.getByRole("checkbox", { name: "economy, business and finance" }).isChecked());
  await page.getByLabel("Headline").fill("Жаңа вокзал ашылды (түзетілді)");
  await page.getByRole("button", { name: "Publish", exact: true }).click();
  await page.waitForURL(published);
  await page.getByRole("heading", { name: "Жаңа вокзал ашылды (түзетілді)" }).waitFor();
  assert.equal(await page.locator(".versions li").count(), 2);
  await page.locator(".versions summary").first().click();
  assert.equal(await page.locator(".versions .diff ins").first().textContent(), "(түзетілді)", "the change is shown");
  await page.screenshot({ path: `${shots}/published.png`, fullPage: true });
  await page.getByLabel("Reason for the kill").fill("Wrong station");
  await page.getByRole("button", { name: "Kill this item" }).click();
  // The kill asks once more, showing the reason, which it requires.
  const dialog = page.getByRole("alertdialog");
  assert.equal(await dialog.getByLabel("Reason for the kill").inputValue(), "Wrong station");
  await dialog.getByRole("button", { name: "Kill this item" }).click();
  await page.getByText("This item was killed by its publisher").waitFor();
  assert.ok(await page.getByText("Wrong station").isVisible());
  // The kill notices on their own, from the wire's filter panel.
  await page.goto(`${base}/`);
  await page.getByLabel("Kill notices only").check();
  await page.getByRole("button", { name: "Show" }).click();
  await page.waitForURL(/kills=only/);
  const killRows = page.locator("#wire tbody tr");
  await killRows.first().waitFor();
  assert.ok(await killRows.evaluateAll((rows) => rows.every((row) => row.classList.contains("kill"))), "only kill notices");
  assert.ok((await page.locator("#wire tbody tr", { hasText: "Жаңа вокзал ашылды (түзетілді)" }).count()) === 1);

  // Uploading files: every item of a good file is published; a bad file is refused with its name.
  await page.goto(`${base}/publish`);
  const uploadItems = [1, 2].map((n) => ({ uri: `urn:browser:upload:${n}`, language: "kk", headlines: [{ value: `Жүктелген хабар ${n}` }] }));
  await page.getByLabel("Files", { exact: true }).setInputFiles([
    { name: "items.json", mimeType: "application/json", buffer: Buffer.from(JSON.stringify(uploadItems)) },
    { name: "broken.xml", mimeType: "application/xml", buffer: Buffer.from("<newsItem><unclosed></newsItem>") },
  ]);
  await page.getByRole("button", { name: "Upload and publish" }).click();
  await page.locator(".uploaded li", { hasText: "2 items published." }).waitFor();
  await page.locator(".uploaded li.error", { hasText: "broken.xml: not published." }).waitFor();
  await checkAccessible(page, "an upload's outcome");
  const uploadedItem = await (await fetch(`${base}/v1/items?limit=5`, { headers: { authorization: `Bearer ${key}` } })).text();
  assert.ok(uploadedItem.includes("Жүктелген хабар 2"), "the uploaded items are on the wire");

  // A correction from the form keeps what the form does not show (people named in an API item).
  const rich = await publish({
    uri: "urn:browser:rich", language: "kk", headlines: [{ value: "Форум ашылды" }],
    bodies: [{ contentType: "text/html", value: "<p>Форумға мыңнан астам адам келді.</p>" }], people: [{ name: "Алихан" }],
  });
  await page.goto(`${base}/publish?correct=${rich.id}`);
  await page.getByLabel("Headline").fill("Форум ашылды (түзетілді)");
  await page.getByRole("button", { name: "Publish", exact: true }).click();
  await page.waitForURL(/\/items\/itm_/);
  const richStored = await (await fetch(`${base}/v1/items/${rich.id}`, { headers: { authorization: `Bearer ${key}` } })).text();
  assert.ok(richStored.includes("Форум ашылды (түзетілді)") && richStored.includes("Алихан"), `kept: ${richStored}`);

  // The wire desk: a subject filter by name, and the reading pane beside the list on a wide screen.
  await publish({
    uri: "urn:browser:economy", language: "ru", urgency: 2, headlines: [{ value: "Товарооборот вырос на треть" }],
    bodies: [{ contentType: "text/html", value: "<p>Товарооборот между странами вырос на треть.</p>" }],
    subjects: [{ name: "economy, business and finance", uri: "http://cv.iptc.org/newscodes/mediatopic/04000000" }],
  });
  await page.goto(`${base}/`);
  await page.locator("#wire-subject").selectOption({ label: "economy, business and finance" });
  await page.getByRole("button", { name: "Show" }).click();
  await page.waitForURL(/subject=medtop%3A04000000/);
  const economyRow = page.locator("#wire tbody tr", { hasText: "Товарооборот вырос на треть" });
  await economyRow.waitFor();
  assert.equal(await page.locator("#wire tbody tr", { hasText: "Evil" }).count(), 0, "other subjects are filtered out");
  assert.match(await page.locator("#wire").getAttribute("data-stream"), /subject=medtop%3A04000000/);
  await economyRow.locator("td.headline a").click();
  await page.locator("#reading-pane h2", { hasText: "Товарооборот вырос на треть" }).waitFor();
  assert.match(page.url(), /subject=/, "the pane opened without leaving the wire");
  assert.ok(await page.locator("#reading-pane").getByText("Товарооборот между странами вырос на треть.").isVisible());
  await checkAccessible(page, "the wire with its reading pane");
  await page.screenshot({ path: `${shots}/wire-pane.png`, fullPage: true });
  await page.locator("#reading-pane .pane-open a").click();
  await page.waitForURL(/\/items\/itm_/);
  await page.getByRole("heading", { name: "Товарооборот вырос на треть" }).waitFor();

  // Search: browsing by a filter without words; a subject facet by name narrows the hits.
  await page.goto(`${base}/search?q=&lang=ru`);
  await page.locator(".hit", { hasText: "Товарооборот вырос на треть" }).waitFor();
  await page.locator(".facets").getByRole("link", { name: "economy, business and finance" }).click();
  await page.waitForURL(/subject=medtop%3A04000000/);
  await page.locator(".active-filters").getByText("economy, business and finance").waitFor();
  assert.ok((await page.locator(".histogram a").count()) >= 1, "a histogram of days");
  await checkAccessible(page, "search facets");
  await page.screenshot({ path: `${shots}/search-facets.png`, fullPage: true });
  // A saved search keeps its ranking mode, and can be deleted (after a confirmation).
  await page.goto(`${base}/search?q=${encodeURIComponent("поезд")}&mode=semantic`);
  await page.getByLabel("Name of the search").fill("Trains by meaning");
  await page.getByRole("button", { name: "Save this search" }).click();
  const savedLink = page.getByRole("link", { name: "Trains by meaning" });
  await savedLink.waitFor();
  assert.match(await savedLink.getAttribute("href"), /mode=semantic/);
  await page.locator(".saved li", { hasText: "Trains by meaning" }).getByRole("button", { name: "Delete" }).click();
  await page.getByRole("alertdialog").getByRole("button", { name: "Delete" }).click();
  await page.waitForURL(`${base}/search`);
  assert.equal(await page.getByRole("link", { name: "Trains by meaning" }).count(), 0);

  // Filtering the wire by language keeps only those items (and so does its live stream).
  await page.goto(`${base}/`);
  await page.getByLabel("Language", { exact: true }).last().selectOption("en");
  await page.getByRole("button", { name: "Show" }).click();
  await page.waitForURL(/lang=en/);
  const languages = await page.locator("#wire tbody tr td:nth-child(4)").allTextContents();
  assert.ok(languages.length > 0 && languages.every((l) => l === "en"), `only English items: ${languages}`);
  assert.match(await page.locator("#wire").getAttribute("data-stream"), /lang=en/);

  // Switch the UI to Kazakh: Kazakh labels, remembered on the next page.
  await page.goto(`${base}/?ui=kk`);
  await page.getByRole("heading", { name: "Лента" }).waitFor();
  await page.goto(`${base}/`);
  assert.equal(await page.locator("html").getAttribute("lang"), "kk");
  assert.ok(await page.getByText("Тіл").first().isVisible());
  await page.screenshot({ path: `${shots}/wire-kk.png`, fullPage: true });
  for (const [name, path] of [["search", `/search?q=${encodeURIComponent("терминал")}`], ["subscriptions", "/subscriptions"], ["publish", "/publish"], ["item", `/items/${dirty.id}`], ["item-translated", `/items/${chinese.id}?lang=kk`]]) {
    await page.goto(`${base}${path}`);
    assert.equal(await page.locator("html").getAttribute("lang"), "kk");
    await page.screenshot({ path: `${shots}/${name}-kk.png`, fullPage: true });
  }
  await page.goto(`${base}/`);

  assert.equal(await page.locator("#wire tbody tr", { hasText: "Evil" }).locator("td.urgency").textContent(), "", "no urgency shows empty");

  // Every UI language renders the wire with its own labels (screenshots for a person to review).
  for (const [code, wire] of [["zh", "电讯"], ["ru", "Лента"], ["ky", "Тасма"], ["tg", "Навор"], ["tk", "Lenta"], ["uz", "Lenta"], ["en", "Wire"]]) {
    await page.goto(`${base}/?ui=${code}`);
    await page.getByRole("heading", { name: wire }).waitFor();
    assert.equal(await page.locator("html").getAttribute("lang"), code);
    await page.screenshot({ path: `${shots}/wire-${code}.png` });
    // Every wire row lays out as a table row (a page style once leaked onto rows of one class).
    const displays = await page.evaluate(() => Array.from(document.querySelectorAll("#wire tbody tr")).map((tr) => getComputedStyle(tr).display));
    assert.ok(displays.every((d) => d === "table-row"), `wire rows display as ${displays}`);
  }

  // A phone-sized screen still shows the wire.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${shots}/wire-phone.png`, fullPage: true });

  assert.deepEqual(errors, [], "no script errors on the pages");

  // Keyboard only: Tab reaches the sign-in fields in order, Enter signs in.
  const keyboard = await (await browser.newContext({ locale: "en-US" })).newPage();
  await keyboard.goto(`${base}/login`);
  const focused = () => keyboard.evaluate(() => document.activeElement && document.activeElement.id);
  for (let presses = 0; presses < 10 && (await focused()) !== "email"; presses++) await keyboard.keyboard.press("Tab");
  assert.equal(await focused(), "email", "Tab reaches the email field");
  await keyboard.keyboard.type(email);
  await keyboard.keyboard.press("Tab");
  assert.equal(await focused(), "password", "the password field comes next");
  await keyboard.keyboard.type(password);
  await keyboard.keyboard.press("Enter");
  await keyboard.waitForURL(`${base}/`);

  // An admin manages the agency: adds a user, creates and revokes a key, shares with another member.
  const admin = await (await browser.newContext({ locale: "en-US" })).newPage();
  await admin.goto(`${base}/login`);
  await admin.getByLabel("Email").fill(process.env.KARAVAN_ADMIN_EMAIL);
  await admin.getByLabel("Password").fill(password);
  await admin.getByRole("button", { name: "Sign in" }).click();
  await admin.waitForURL(`${base}/`);
  await admin.getByRole("link", { name: "Administration" }).click();
  await admin.locator("#user-email").fill("reporter@kazinform.kz");
  await admin.locator("#user-name").fill("Reporter");
  await admin.locator("#user-role").selectOption("reader");
  await admin.locator("#user-password").fill("reporter password 1");
  await admin.getByRole("button", { name: "Add user" }).click();
  await admin.getByRole("cell", { name: "reporter@kazinform.kz" }).waitFor();
  await admin.locator("tr", { hasText: "reporter@kazinform.kz" }).getByRole("button", { name: "Disable" }).click();
  await admin.getByRole("alertdialog").getByRole("button", { name: "Disable" }).click();
  await admin.locator("tr", { hasText: "reporter@kazinform.kz" }).getByText("disabled").waitFor();
  await admin.locator("tr", { hasText: "reporter@kazinform.kz" }).getByRole("button", { name: "Enable" }).click();
  await admin.locator("tr", { hasText: "reporter@kazinform.kz" }).getByText("active").waitFor();
  await admin.locator("#key-label").fill("wire robot");
  await admin.getByRole("button", { name: "Create key" }).click();
  const newKey = await admin.locator(".created input").inputValue();
  assert.match(newKey, /^kvn_[0-9a-f]{64}$/);
  const me = await fetch(`${base}/v1/me`, { headers: { authorization: `Bearer ${newKey}` } });
  assert.equal(me.status, 200, "the new key works");
  await admin.goto(`${base}/admin`);
  await admin.locator("tr", { hasText: "wire robot" }).getByRole("button", { name: "Revoke" }).click();
  await admin.getByRole("alertdialog").getByRole("button", { name: "Revoke" }).click();
  await admin.locator("tr", { hasText: "wire robot" }).getByText("revoked").waitFor();
  const revoked = await fetch(`${base}/v1/me`, { headers: { authorization: `Bearer ${newKey}` } });
  assert.equal(revoked.status, 401, "the revoked key stops working");
  await admin.locator("#grantee").selectOption({ label: "Kabar" });
  await admin.locator("#delay").fill("30");
  await admin.getByRole("button", { name: "Add agreement" }).click();
  await admin.locator("tr", { hasText: "Kabar" }).getByText("view").waitFor();
  // A partner's RSS feed is registered; a private address is refused with the reason shown.
  await admin.locator("#feed-name").fill("Ministry");
  await admin.locator("#feed-url").fill("http://127.0.0.1:9/rss");
  await admin.getByRole("button", { name: "Add feed" }).click();
  await admin.getByRole("alert").getByText("url:").waitFor();
  await admin.locator("#feed-name").fill("Ministry");
  await admin.locator("#feed-url").fill("https://press.example.kz/rss");
  await admin.locator("#feed-language").fill("kk");
  await admin.locator("#feed-interval").fill("30");
  await admin.getByRole("button", { name: "Add feed" }).click();
  const feedRow = admin.locator("tr", { hasText: "press.example.kz" });
  await feedRow.waitFor();
  await feedRow.getByRole("button", { name: "Pause" }).click();
  await admin.locator("tr", { hasText: "press.example.kz" }).getByText("paused").waitFor();
  await admin.locator("tr", { hasText: "press.example.kz" }).getByRole("button", { name: "Resume" }).click();
  await admin.locator("tr", { hasText: "press.example.kz" }).getByRole("button", { name: "Pause" }).waitFor();
  // The admin also operates the exchange: it adds a member agency.
  await admin.locator("#member-name").fill("Khovar");
  await admin.locator("#member-country").fill("tj");
  await admin.locator("#member-languages").fill("tg, ru");
  await admin.getByRole("button", { name: "Add member agency" }).click();
  await admin.getByRole("cell", { name: "Khovar" }).waitFor();
  assert.equal(await admin.getByText("None", { exact: true }).count(), 0, "no Rust None leaks into a page");
  await checkAccessible(admin, "the administration page");
  await admin.screenshot({ path: `${shots}/admin.png`, fullPage: true });

  // A live row in another language takes its headline in the UI language once the server has
  // translated it (the agency now reads English, so heads are translated into it as items arrive).
  // The languages read are chosen on the translation settings page, which also keeps glossaries.
  await page.goto(`${base}/translation`);
  await page.getByRole("heading", { name: "Machine translation" }).waitFor();
  assert.match(await page.locator("main p.help").first().textContent(), /^Translation model: /);
  await page.locator('input[name="languages"][value="en"]').check();
  await page.getByRole("button", { name: "Save the languages" }).click();
  await page.waitForURL(`${base}/translation`);
  assert.ok(await page.locator('input[name="languages"][value="en"]').isChecked());
  const reads = await (await fetch(`${base}/v1/me/read-languages`, { headers: { authorization: `Bearer ${key}` } })).json();
  assert.deepEqual(reads.languages, ["en"]);
  await page.locator("#glossary-from").selectOption("kk");
  await page.locator("#glossary-to").selectOption("en");
  await page.locator("#glossary-terms").fill("Астана = Astana\nбезгіл");
  await page.getByRole("button", { name: "Save the glossary" }).click();
  await page.getByRole("alert").getByText("line 2").waitFor();
  assert.equal(await page.locator("#glossary-terms").inputValue(), "Астана = Astana\nбезгіл", "what was typed is kept");
  await page.locator("#glossary-terms").fill("Астана = Astana\nАқорда = Akorda");
  await page.getByRole("button", { name: "Save the glossary" }).click();
  await page.getByRole("heading", { name: "kk → en (2 terms)" }).waitFor();
  await checkAccessible(page, "the translation settings");
  await checkAxe(page, "the translation settings");
  await page.screenshot({ path: `${shots}/translation.png`, fullPage: true });
  await page.getByRole("button", { name: "Delete the glossary" }).click();
  await page.getByRole("alertdialog").getByRole("button", { name: "Delete the glossary" }).click();
  await page.waitForURL(`${base}/translation`);
  await page.getByText("No glossaries yet.").waitFor();
  // Times follow the user's time zone once set (the browser here is in UTC), and the browser's again
  // when the setting is cleared.
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByRole("heading", { name: "Your settings" }).waitFor();
  assert.notEqual(await page.locator("[data-browser-zone]").textContent(), "", "the browser's zone is named");
  await checkAccessible(page, "the settings");
  await checkAxe(page, "the settings");
  await page.getByLabel("Time zone").selectOption("Asia/Tashkent");
  await page.getByRole("button", { name: "Save settings" }).click();
  await page.getByText("Settings saved.").waitFor();
  assert.equal(await page.getByLabel("Time zone").inputValue(), "Asia/Tashkent");
  await page.goto(`${base}/?ui=en`);
  const firstTime = page.locator("#wire tbody tr time").first();
  await firstTime.waitFor();
  assert.match(await firstTime.getAttribute("title"), /GMT\+5|Uzbekistan/, "the wire's times are Tashkent's");
  await page.goto(`${base}/settings`);
  await page.getByLabel("Time zone").selectOption("");
  await page.getByRole("button", { name: "Save settings" }).click();
  await page.getByText("Settings saved.").waitFor();
  await page.goto(`${base}/?ui=en`);
  await firstTime.waitFor();
  assert.doesNotMatch(await firstTime.getAttribute("title"), /GMT\+5|Uzbekistan/, "the browser's zone again");
  await page.locator("#wire tbody tr").first().waitFor();
  const liveKazakh = await publish({ uri: "urn:browser:live-kk", language: "kk", headlines: [{ value: "Астанада жаңа көпір ашылды" }] });
  const liveRow = page.locator(`#wire tbody tr[data-id="${liveKazakh.id}"]`);
  await liveRow.waitFor({ timeout: 10000 });
  await liveRow.locator(".badge.mt").waitFor({ timeout: 30000 });
  assert.equal(await liveRow.locator("td.headline a").getAttribute("lang"), "en");
  assert.equal(await liveRow.locator("td.headline a").getAttribute("title"), "Астанада жаңа көпір ашылды", "the original in the tooltip");

  // Every page, as an editor of each of two agencies, in four UI languages, on a wide screen and a
  // phone: what they see, axe-core's rules, and a screenshot of each (in .cache/screenshots/tour).
  mkdirSync(`${shots}/tour`, { recursive: true });
  const kabarItem = await (await fetch(`${base}/v1/items`, {
    method: "POST",
    headers: { authorization: `Bearer ${process.env.KARAVAN_KABAR_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({
      uri: "urn:browser:kabar:1", language: "ky", urgency: 1, headlines: [{ value: "Бишкекте жаңы мектеп ачылды" }],
      bodies: [{ contentType: "text/html", value: "<p>Шаардын түштүгүндө 1200 орундуу мектеп ачылды.</p>" }],
      subjects: [{ name: "education", uri: "http://cv.iptc.org/newscodes/mediatopic/05000000" }],
    }),
  })).json();
  // Each item's story, once the story engine has placed it (within seconds).
  const storyOf = async (item, agencyKey) => {
    for (let attempt = 0; attempt < 100; attempt++) {
      const response = await fetch(`${base}/v1/items/${item}/story`, { headers: { authorization: `Bearer ${agencyKey}` } });
      if (response.status === 200) return (await response.json()).story.id;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`${item} was not placed in a story`);
  };
  const agencies = [
    { name: "kazinform", email: "editor@kazinform.kz", item: dirty.id, word: "терминал", story: await storyOf(dirty.id, key) },
    { name: "kabar", email: "editor@kabar.kg", item: kabarItem.id, word: "мектеп", story: await storyOf(kabarItem.id, process.env.KARAVAN_KABAR_KEY) },
  ];
  for (const agency of agencies) {
    const tourContext = await browser.newContext({ locale: "en-US", viewport: { width: 1366, height: 900 } });
    const tour = await tourContext.newPage();
    tour.on("pageerror", (error) => errors.push(`${agency.name}: ${error}`));
    await tour.goto(`${base}/login`);
    await tour.getByLabel("Email").fill(agency.email);
    await tour.getByLabel("Password").fill(password);
    await tour.getByRole("button", { name: "Sign in" }).click();
    await tour.waitForURL(`${base}/`);
    for (const code of ["en", "zh", "kk", "ru"]) {
      for (const width of [1366, 390]) {
        await tour.setViewportSize({ width, height: width > 1000 ? 900 : 844 });
        const pages = [
          ["wire", `/?ui=${code}`],
          ["item", `/items/${agency.item}`],
          ["search", `/search?q=${encodeURIComponent(agency.word)}`],
          ["browse", "/search?q=&lang=ky"],
          ["subscriptions", "/subscriptions"],
          ["publish", "/publish"],
          ["admin-refused", "/admin"],
          ["translation", "/translation"],
          ["settings", "/settings"],
          ["stories", "/stories"],
          ["story", `/stories/${agency.story}`],
        ];
        for (const [name, path] of pages) {
          const response = await tour.goto(`${base}${path}`);
          assert.ok(response.status() < 500, `${name}: ${response.status()}`);
          const label = `${agency.name} ${name} (${code}, ${width}px)`;
          await checkLayout(tour, label, code);
          await checkAccessible(tour, label);
          await checkAxe(tour, label);
          if (name === "wire") {
            const rows = tour.locator("#wire tbody tr");
            assert.ok((await rows.count()) > 0, `${label}: the wire has rows`);
            assert.ok(await rows.first().locator("td.urgency").isVisible(), `${label}: urgency shows`);
          }
          await tour.screenshot({ path: `${shots}/tour/${agency.name}-${code}-${width}-${name}.png`, fullPage: true });
        }
      }
    }
    // The switch keeps the page's state: the query and filters stay when the language changes.
    await tour.setViewportSize({ width: 1366, height: 900 });
    await tour.goto(`${base}/search?q=${encodeURIComponent(agency.word)}&lang=ky&ui=en`);
    await tour.locator("select#ui").selectOption("zh");
    await tour.locator("form.language button").click();
    await tour.waitForURL(/ui=zh/);
    assert.equal(await tour.locator("html").getAttribute("lang"), "zh");
    assert.equal(await tour.locator("#q").inputValue(), agency.word, "the query is kept");
    assert.equal(await tour.locator("#lang").inputValue(), "ky", "the filter is kept");
    await tourContext.close();
  }
  assert.deepEqual(errors, [], "no script errors on the tour");
  console.log("browser: ok");
} finally {
  await browser.close();
}
