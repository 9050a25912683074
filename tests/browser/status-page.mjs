// Drives the server's status page in headless Chromium (Debian's package,
// through playwright-core) the way an operator would look at it, and checks
// what they would look for. Run by tests/tests/it/status_page.rs:
//
//   node status-page.mjs URL CONFIG GOOD_EDIT BAD_EDIT SCREENSHOT_DIR
//
// CONFIG is the server's config file; GOOD_EDIT and BAD_EDIT are files whose
// contents are written over it in turn, without reloading the page. Exits 0
// when every check passes; otherwise prints what failed and exits 1.
import { copyFile } from "node:fs/promises";
import { join } from "node:path";
import { createRequire } from "node:module";

const [url, config, goodEdit, badEdit, shots] = process.argv.slice(2);
const require = createRequire(join(process.env.PLAYWRIGHT_HOME, "package.json"));
const { chromium } = require("playwright-core");

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"],
});
const failures = [];
const check = (ok, what) => { if (!ok) failures.push(what); };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  // Anything a page-injected script would do is caught here.
  await page.addInitScript(() => { window.__pwned = 0; });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const response = await page.goto(url);
  check(response.status() === 200, `status ${response.status()}`);
  const csp = response.headers()["content-security-policy"] ?? "";
  check(csp.startsWith("default-src 'none'"), `CSP: ${csp}`);

  const rows = page.locator("tr.step");
  check(await rows.count() === 2, `two step rows, got ${await rows.count()}`);
  const healthy = (await rows.nth(0).innerText());
  const failing = (await rows.nth(1).innerText());
  check(/ok .* copied/.test(healthy) && !/failed \d+ s ago/.test(healthy), `healthy row: ${healthy}`);
  check(/failed/.test(failing) && /missing/.test(failing), `failing row names its failure: ${failing}`);
  check(/in (59 min|1 h)/.test(await rows.nth(0).locator("td.next").innerText()),
        `next run: ${await rows.nth(0).locator("td.next").innerText()}`);

  // A good edit shows as applied, with no page reload.
  await page.evaluate(() => { window.__stayed = true; });
  await copyFile(goodEdit, config);
  await page.locator('#reload[data-reload="applied"]').waitFor({ timeout: 20000 });
  check(await page.locator("tr.step").count() === 3, "the added step shows");
  await page.screenshot({ path: join(shots, "status-applied.png"), fullPage: true });

  // A broken edit shows as rejected, its error text as text.
  await copyFile(badEdit, config);
  const banner = page.locator('#reload[data-reload="rejected"]');
  await banner.waitFor({ timeout: 20000 });
  const text = await banner.innerText();
  check(text.includes("Last reload rejected"), `banner: ${text}`);
  check(text.includes("<script>window.__pwned=1</script>"), `the <script> shows as text: ${text}`);
  check(await page.locator("main script, main img").count() === 0, "no element came from the error text");
  check(await page.evaluate(() => window.__pwned) === 0, "no injected script ran");
  check(await page.evaluate(() => window.__stayed) === true, "the page was not reloaded");
  check(await page.locator("tr.step").count() === 3, "the running config stays");
  await page.screenshot({ path: join(shots, "status-rejected.png"), fullPage: true });
  check(errors.length === 0, `page errors: ${errors.join("; ")}`);
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(failures.join("\n"));
  process.exit(1);
}
console.log("ok");
