// The workbench in a real headless Chromium (Debian's, driven by playwright-core): what a coder
// does with a case, each state photographed. Usage: node workbench_browser.mjs BASE_URL OUT_DIR
// With AUTH_BASE_URL and TOKEN, also a server with authentication on: the page asks for the
// token, keeps it in session storage and sends it.
// Prints one JSON line of what it saw; tests/browser.rs judges it and the screenshots.
import { chromium } from "playwright-core";

const [base, out, authBase, token] = process.argv.slice(2);
const PASTED = [
  "主诉：发作性胸痛1月，加重3天。",
  "现病史：患者1月前活动后出现胸骨后压榨样疼痛。",
  "出院诊断：1.冠状动脉粥样硬化性心脏病 不稳定型心绞痛 2.高血压病3级（很高危） 3.2型糖尿病",
  "手术名称：冠状动脉造影术",
  "手术经过：穿刺右桡动脉，以5F TIG造影导管行冠脉造影示前降支近段狭窄50%，未行介入治疗。",
].join("\n");
const BATCH = [
  JSON.stringify({ record_id: "WB-BATCH-1", 出院诊断: "1.冠状动脉粥样硬化性心脏病 不稳定型心绞痛", 手术名称: "冠状动脉造影术" }),
  '{"record_id": "WB-BATCH-2", "出院诊断": ',
  JSON.stringify({ record_id: "WB-BATCH-3", 出院诊断: "1.心房颤动 2.高血压病2级" }),
].join("\n");

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
const page = await context.newPage();
const r = { errors: [] };
page.on("pageerror", (e) => r.errors.push(String(e)));
const shot = (name) => page.screenshot({ path: `${out}/${name}.png`, fullPage: true });

try {
  await page.goto(base + "/");
  await shot("01-empty");
  // By keyboard: the paste box, then Tab to its button and Enter.
  await page.focus("#paste");
  await page.keyboard.insertText(PASTED);
  await page.keyboard.press("Tab");
  r.focusedAfterTab = await page.evaluate(() => document.activeElement.textContent);
  await page.keyboard.press("Enter");
  const dx = page.locator('textarea[name="s.discharge_diagnosis"]');
  await dx.waitFor();
  await dx.fill((await dx.inputValue()) + " 4.高脂血症");
  await page.fill("#record_id", "WB-BROWSER-1");
  await shot("02-sections");
  // Layout shifts while coding (not caused by the click itself) are summed as CLS counts them.
  await page.evaluate(() => {
    window.__shift = 0;
    new PerformanceObserver((list) => { for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shift += e.value; }).observe({ type: "layout-shift" });
  });
  await page.click("#editor button.primary");
  await page.waitForSelector("#case");
  await page.waitForTimeout(300);
  r.layoutShift = await page.evaluate(() => window.__shift);
  r.url = page.url();
  r.codedWithEdit = (await page.locator("#case").textContent()).includes("高脂血症");
  await shot("03-coded");

  const card = page.locator("details.stage").first();
  await card.locator("summary").click();
  r.cardOpen = await card.evaluate((d) => d.open);
  const ev = page.locator("table[data-type=Condition] button.ev").first();
  r.evidence = await ev.locator(".ev-text").textContent();
  await ev.click();
  const mark = page.locator("mark.evidence");
  await mark.waitFor();
  r.mark = await mark.textContent();
  r.markSection = await mark.evaluate((m) => m.closest("pre").dataset.section);
  r.evidenceSection = await ev.getAttribute("data-section");
  await shot("04-evidence");

  await page.fill("#reviewer-name", "李四");
  await page.dispatchEvent("#reviewer-name", "change");
  const rowIds = await page.locator("table[data-type=Condition] tbody tr").evaluateAll((rs) => rs.map((x) => x.id));
  r.rows = rowIds.length;
  const row = (i) => page.locator("#" + rowIds[i]);
  await row(0).locator("button[value=accept]").click();
  await page.waitForSelector(`#${rowIds[0]}.accepted`);
  await row(1).locator("input[name=code]").pressSequentially("I25.10", { delay: 30 });
  await page.waitForFunction((id) => document.querySelector(`#${id} datalist option`) !== null, rowIds[1]);
  r.options = await row(1).locator("datalist option").evaluateAll((os) => os.map((o) => o.value));
  await row(1).locator("input[name=code]").fill("I25.103");
  await row(1).locator("input[name=comment]").fill("按编码规则");
  await row(1).locator("button[value=correct]").click();
  await page.waitForSelector(`#${rowIds[1]}.corrected`);
  await row(2).locator("button[value=reject]").click();
  await page.waitForSelector(`#${rowIds[2]}.rejected`);
  await shot("05-reviewed");
  const feedback = (await (await fetch(`${base}/ui/feedback.jsonl`)).text()).trim().split("\n").map((l) => JSON.parse(l));
  r.reviewers = [...new Set(feedback.map((f) => f.who))];

  await page.reload();
  await page.waitForSelector("#case");
  r.afterReload = await page.locator("table[data-type=Condition] tbody tr").evaluateAll((rs) => rs.map((x) => x.className));
  await shot("06-reloaded");

  // Someone else reviews the fourth code through the FHIR API; this page still has the old version.
  const id4 = rowIds[3].replace("row-Condition-", "");
  const current = await (await fetch(`${base}/fhir/Condition/${id4}`)).json();
  current.verificationStatus.coding[0].code = "confirmed";
  const put = await fetch(`${base}/fhir/Condition/${id4}`, {
    method: "PUT",
    headers: { "Content-Type": "application/fhir+json", "If-Match": `W/"${current.meta.versionId}"` },
    body: JSON.stringify(current),
  });
  r.putStatus = put.status;
  await row(3).locator("button[value=reject]").click();
  await page.waitForSelector(`#${rowIds[3]} .conflict`);
  r.conflict = await page.locator(`#${rowIds[3]} .conflict`).textContent();
  r.stillConfirmed = (await (await fetch(`${base}/fhir/Condition/${id4}`)).json()).verificationStatus.coding[0].code;
  await shot("07-conflict");

  await page.click("nav >> text=历史病例");
  await page.waitForSelector("#history");
  await page.fill("#history input[name=q]", "WB-BROWSER-1");
  await page.click("#history button[type=submit]");
  await page.waitForFunction(() => document.querySelectorAll("#history input[name=ids]").length === 1);
  await page.locator("#history input[name=ids]").check();
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("button[data-filename$=xlsx]")]);
  await download.saveAs(`${out}/cases.xlsx`);
  await shot("08-history");

  await page.goto(base + "/");
  await page.setInputFiles("#file", { name: "batch.jsonl", mimeType: "application/x-ndjson", buffer: Buffer.from(BATCH) });
  await page.waitForFunction(() => document.querySelector("#upload input[name=file_b64]").value.length > 0);
  await page.click("#upload button[type=submit]");
  await page.waitForFunction(() => { const b = document.querySelector("#batch"); return b && !b.hasAttribute("hx-trigger"); }, null, { timeout: 60000 });
  r.batchDone = await page.locator("#batch td.done").count();
  r.batchFailed = await page.locator("#batch td.failed").allTextContents();
  await shot("09-batch");

  await page.goto(base + "/?lang=en");
  r.english = await page.locator("h1").textContent();
  await shot("10-english");

  await page.setViewportSize({ width: 820, height: 1100 });
  await page.goto(r.url + "?lang=zh");
  await page.waitForSelector("#case");
  r.overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  await shot("11-tablet");

  if (authBase) {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(authBase + "/");
    await page.waitForSelector("#token-dialog[open]");
    r.askedForToken = true;
    await shot("12-token");
    await page.fill("#token-dialog input[name=token]", token);
    await page.click("#token-dialog button[type=submit]");
    await page.waitForFunction(() => document.querySelector("#who").textContent.includes("coder-browser"));
    r.who = await page.locator("#who").textContent();
    r.tokenInSession = await page.evaluate((t) => sessionStorage.getItem("jointcoder.token") === t && localStorage.length === 0, token);
    await page.fill("#paste", PASTED);
    await page.click("#input form button.primary");
    await page.locator('textarea[name="s.discharge_diagnosis"]').waitFor();
    r.authedFragment = true;
    r.tokenInUrl = page.url().includes(token.slice(0, 20));
    await shot("13-authed");
  }
} catch (e) {
  r.failure = String(e && e.stack ? e.stack : e);
  await shot("99-failure").catch(() => {});
}
console.log(JSON.stringify(r));
await browser.close();
