// The console's infrastructure views in headless Chromium, run by
// tests/integration/console_test.c with alice's console given her gateway
// (--mesh-admin) and resource manager (--rm), one call already routed
// through the gateway and one application run on the cluster. Environment:
// ALICE_PORT, ALICE_TOKEN, SHOTS, CHROMIUM (default /usr/bin/chromium),
// CLUSTER_ID (the gateway's cluster), APP_NAME.
import { chromium } from "playwright-core";

const env = process.env;
for (const k of ["ALICE_PORT", "ALICE_TOKEN", "SHOTS", "CLUSTER_ID", "APP_NAME"])
  if (!env[k]) throw new Error(`missing environment variable ${k}`);
const T = 20000;
let step = "start";
function check(cond, what) {
  if (!cond) throw new Error(what);
}

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox"],
});
try {
  step = "alice logs in";
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => { console.error(`page error: ${e.message}`); process.exitCode = 1; });
  await page.goto(`http://127.0.0.1:${env.ALICE_PORT}/?token=${env.ALICE_TOKEN}`);
  await page.locator("#app").waitFor({ state: "visible", timeout: T });

  step = "the gateway's cluster, its success rate and endpoint";
  const row = page.locator(`#gateway-body tr[data-cluster="${env.CLUSTER_ID}"]`);
  await row.waitFor({ timeout: T });
  const cells = await row.locator("td").allInnerTexts();
  check(cells[0] === "grpc (h2)", `router cell: ${cells[0]}`);
  check(cells[4] === "100.0 %", `success rate: ${cells[4]}`);
  check(/ms$/.test(cells[5]) && /ms$/.test(cells[6]), `latencies: ${cells[5]} ${cells[6]}`);
  check(cells[7].includes("127.0.0.1:") && cells[7].includes("1/1 ok"), `endpoints: ${cells[7]}`);

  step = "the resource manager's node, queue and application";
  await page.locator("#rm-nodes tr td", { hasText: /^RUNNING$/ }).first().waitFor({ timeout: T });
  check(await page.locator("#rm-nodes tr").count() === 1, "not one node");
  const node = await page.locator("#rm-nodes tr").first().locator("td").allInnerTexts();
  check(node[3].endsWith("/ 4096 MiB") && node[4].endsWith("/ 4"), `node: ${node}`);
  check(await page.locator("#rm-queues tr td", { hasText: /^root$/ }).count() === 1,
        "no root queue");
  const app = page.locator("#rm-apps tr", { hasText: env.APP_NAME });
  await app.waitFor({ timeout: T });
  const a = await app.locator("td").allInnerTexts();
  check(a[0].startsWith("application_") && a[4] === "FINISHED", `application: ${a}`);
  check(await page.locator("#rm-why").textContent() === "", "an RM error shows");
  await page.screenshot({ path: `${env.SHOTS}/alice-infra.png`, fullPage: true });
  console.log("console infra test: ok");
} catch (e) {
  console.error(`console infra test failed at "${step}": ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
