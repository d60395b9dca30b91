// The console's end-to-end test in headless Chromium, run by
// tests/integration/console_test.c with two consoles (alice, bob) already
// serving on loopback. Environment: ALICE_PORT, ALICE_TOKEN, BOB_PORT,
// BOB_TOKEN, DATA (the directory of a.csv and b.csv), SHOTS (where the
// screenshots go), CHROMIUM (default /usr/bin/chromium).
//
// Alice proposes a PSI through her page (first with a wrong key column,
// which must show an error next to the field), Bob approves it in his,
// and both pages must show the finished job with its intersection size;
// Alice's output link must serve her rows. Then a logistic regression
// (alice holds the label): a wrong label column is refused next to its
// field, bob approves, and both pages draw the loss curve of 4 epochs.
// Then a prediction with both models (the label party, alice, must name a
// scores file): her page shows accuracy and AUC, bob's that the scores
// went to alice. Then joint statistics revealed to alice only: her page
// shows the tables, bob's that they went to alice. Each step fails loudly: any
// exception exits 1 with the step's name.
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";

const env = process.env;
const need = (k) => {
  if (!env[k]) throw new Error(`missing environment variable ${k}`);
  return env[k];
};
const alice = { port: need("ALICE_PORT"), token: need("ALICE_TOKEN") };
const bob = { port: need("BOB_PORT"), token: need("BOB_TOKEN") };
const data = need("DATA");
const shots = need("SHOTS");
const T = 20000;

let step = "start";
function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function login(browser, who) {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await ctx.newPage();
  page.on("pageerror", (e) => { console.error(`page error: ${e.message}`); process.exitCode = 1; });
  await page.goto(`http://127.0.0.1:${who.port}/?token=${who.token}`);
  check(new URL(page.url()).search === "", "the login redirect keeps the token in the address");
  await page.locator("#app").waitFor({ state: "visible", timeout: T });
  return page;
}

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox"],
});
try {
  step = "the page without the token shows the login box";
  {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`http://127.0.0.1:${alice.port}/`);
    await page.locator("#login").waitFor({ state: "visible", timeout: T });
    check(await page.locator("#app").isHidden(), "the app shows without a token");
    const r = await page.request.get(`http://127.0.0.1:${alice.port}/api/state`);
    check(r.status() === 401, `the API answered ${r.status()} without the token`);
    await ctx.close();
  }

  step = "alice logs in and sees bob reachable";
  const pa = await login(browser, alice);
  await pa.locator("#whoami", { hasText: "party alice" }).waitFor({ timeout: T });
  const bobRow = pa.locator("#parties-body tr[data-party=bob]");
  await bobRow.locator("td", { hasText: /^reachable$/ }).waitFor({ timeout: T });
  check(/ms$/.test(await bobRow.locator("td").nth(2).innerText()), "no round-trip time for bob");

  step = "a wrong key column is refused next to the field";
  await pa.fill("#psi-input", `${data}/a.csv`);
  await pa.fill("#psi-keys", "idd");
  await pa.fill("#psi-output", `${data}/alice_out.csv`);
  await pa.click("#psi-submit");
  await pa.locator("#psi-keys-err", { hasText: "column 'idd' is not in a.csv" })
    .waitFor({ timeout: T });
  check(await pa.locator("#psi-keys.invalid").count() === 1, "the keys field is not marked");
  check(await pa.locator("#jobs-body tr").count() === 0, "a refused form made a job");
  await pa.screenshot({ path: `${shots}/alice-form-error.png`, fullPage: true });

  step = "alice proposes the PSI";
  await pa.fill("#psi-keys", "id");
  await pa.click("#psi-submit");
  const aliceJob = pa.locator("#jobs-body tr").first();
  await aliceJob.locator("td.state", { hasText: "proposed" }).waitFor({ timeout: T });
  check((await aliceJob.innerText()).includes("bob: waiting"), "bob's decision is not waiting");
  check(await pa.locator("#psi-keys-err").textContent() === "", "the keys error stayed");

  step = "bob sees who asks for what, and approves";
  const pb = await login(browser, bob);
  const card = pb.locator("#approvals-list .approval").first();
  await card.waitFor({ timeout: T });
  const text = await card.innerText();
  check(text.includes("alice asks for a PSI on columns id"), `the card says: ${text}`);
  await card.locator("input[name=input]").fill(`${data}/b.csv`);
  await card.locator("input[name=keys]").fill("uid");
  await card.locator("input[name=output]").fill(`${data}/bob_out.csv`);
  await pb.screenshot({ path: `${shots}/bob-approval.png`, fullPage: true });
  await card.locator("button.approve").click();

  step = "both see the finished job";
  for (const [page, name] of [[pa, "alice"], [pb, "bob"]]) {
    const row = page.locator("#jobs-body tr").first();
    await row.locator("td.state", { hasText: "done" }).waitFor({ timeout: 60000 });
    const t = await row.innerText();
    check(t.includes("intersection 2 keys"), `${name}'s row says: ${t}`);
    check(/rows \d+\/\d+ \(100\.0%\), [\d,-]+ rows\/s, bucket 1\/1/.test(t),
          `${name}'s row has no rows and rate: ${t}`);
    check(t.includes("alice: approved") && t.includes("bob: approved"), `approvals: ${t}`);
    check(await page.locator("#approvals-list .approval").count() === 0, "a card stayed");
    await page.screenshot({ path: `${shots}/${name}-done.png`, fullPage: true });
  }

  step = "alice's output link serves her rows";
  const href = await pa.locator("#jobs-body tr a.output-link").first().getAttribute("href");
  const out = await pa.request.get(`http://127.0.0.1:${alice.port}${href}`);
  check(out.status() === 200, `the output link answered ${out.status()}`);
  const body = await out.text();
  check(body === readFileSync(`${data}/alice_out.csv`, "utf8"), `the link served: ${body}`);

  step = "alice proposes a logistic regression; a wrong label column is refused";
  await pa.fill("#lr-input", `${data}/alice_lr.csv`);
  await pa.fill("#lr-keys", "id");
  await pa.fill("#lr-label", "alice:yy");
  await pa.fill("#lr-epochs", "4");
  await pa.fill("#lr-batch_size", "16");
  await pa.fill("#lr-learning_rate", "0.5");
  await pa.fill("#lr-output", `${data}/alice_model.json`);
  await pa.click("#lr-submit");
  await pa.locator("#lr-label-err", { hasText: "column 'yy' is not in alice_lr.csv" })
    .waitFor({ timeout: T });
  await pa.fill("#lr-label", "alice:y");
  await pa.click("#lr-submit");
  await pa.locator("#jobs-body tr").nth(1).waitFor({ timeout: T });

  step = "bob approves the training";
  const lrCard = pb.locator("#approvals-list .approval").first();
  await lrCard.waitFor({ timeout: T });
  const lrText = await lrCard.innerText();
  check(lrText.includes("alice asks for a logistic regression training on columns id, " +
                        "label alice:y, 4 epochs, batch 16, learning rate 0.5"),
        `the card says: ${lrText}`);
  await lrCard.locator("input[name=input]").fill(`${data}/bob_lr.csv`);
  await lrCard.locator("input[name=keys]").fill("uid");
  await lrCard.locator("input[name=output]").fill(`${data}/bob_model.json`);
  await lrCard.locator("button.approve").click();

  step = "both see the loss curve";
  for (const [page, name] of [[pa, "alice"], [pb, "bob"]]) {
    const row = page.locator("#jobs-body tr").first();
    await row.locator("td.state", { hasText: "done" }).waitFor({ timeout: 60000 });
    const t = await row.innerText();
    check(t.includes("lr-train") && t.includes("final loss"), `${name}'s LR row says: ${t}`);
    const curve = row.locator("svg.loss-curve");
    check(await curve.count() === 1, `${name} has no loss curve`);
    check(await curve.locator("circle").count() === 4, `${name}'s curve has not 4 epochs`);
    const pts = (await curve.locator("polyline").getAttribute("points")).split(" ");
    check(pts.length === 4, `${name}'s polyline: ${pts}`);
    const ys = pts.map((p) => Number(p.split(",")[1]));
    check(ys[3] > ys[0], `${name}'s loss did not fall: ${ys}`); /* SVG y grows downwards */
    await page.screenshot({ path: `${shots}/${name}-lr-done.png`, fullPage: true });
  }

  step = "alice asks for a prediction; without a scores file she is told she needs one";
  await pa.fill("#pr-input", `${data}/alice_lr.csv`);
  await pa.fill("#pr-keys", "id");
  await pa.fill("#pr-label", "alice:y");
  await pa.fill("#pr-model", `${data}/alice_model.json`);
  await pa.click("#pr-submit");
  await pa.locator("#pr-output-err", { hasText: "required: this party holds the label" })
    .waitFor({ timeout: T });
  await pa.fill("#pr-output", `${data}/alice_scores.csv`);
  await pa.click("#pr-submit");
  await pa.locator("#jobs-body tr").nth(2).waitFor({ timeout: T });

  step = "bob approves the prediction with his model";
  const prCard = pb.locator("#approvals-list .approval").first();
  await prCard.waitFor({ timeout: T });
  const prText = await prCard.innerText();
  check(prText.includes("alice asks for a logistic regression prediction on columns id, " +
                        "label alice:y"), `the card says: ${prText}`);
  await prCard.locator("input[name=input]").fill(`${data}/bob_lr.csv`);
  await prCard.locator("input[name=keys]").fill("uid");
  await prCard.locator("input[name=model]").fill(`${data}/bob_model.json`);
  await prCard.locator("button.approve").click();

  step = "alice sees accuracy and AUC, bob that the scores went to alice";
  {
    const row = pa.locator("#jobs-body tr").first();
    await row.locator("td.state", { hasText: "done" }).waitFor({ timeout: 60000 });
    const t = await row.locator(".evaluation").innerText();
    const m = /^accuracy ([0-9.]+), AUC ([0-9.]+) on 60 rows$/.exec(t);
    check(m && Number(m[1]) >= 0.7 && Number(m[2]) >= 0.8, `alice's evaluation: ${t}`);
    await pa.screenshot({ path: `${shots}/alice-predict-done.png`, fullPage: true });
    const brow = pb.locator("#jobs-body tr").first();
    await brow.locator("td.state", { hasText: "done" }).waitFor({ timeout: 60000 });
    check((await brow.innerText()).includes("the scores went to alice"), "bob's predict row");
  }

  step = "alice asks for statistics revealed to her only; a bad statistic is refused";
  await pa.fill("#stats-input", `${data}/alice_lr.csv`);
  await pa.fill("#stats-keys", "id");
  await pa.fill("#stats-stats", "count,mean,median");
  await pa.fill("#stats-reveal_to", "alice");
  await pa.click("#stats-submit");
  await pa.locator("#stats-stats-err", { hasText: "'median': count, sum, mean" })
    .waitFor({ timeout: T });
  await pa.fill("#stats-stats", "count,mean,min,max,corr");
  await pa.click("#stats-submit");
  await pa.locator("#jobs-body tr").nth(3).waitFor({ timeout: T });

  step = "bob approves the statistics";
  const stCard = pb.locator("#approvals-list .approval").first();
  await stCard.waitFor({ timeout: T });
  const stText = await stCard.innerText();
  check(stText.includes("alice asks for joint statistics (count,mean,min,max,corr) with rows " +
                        "aligned on columns id, revealed to alice"), `the card says: ${stText}`);
  check(await stCard.locator("input[name=output]").count() === 0, "a stats card asks for output");
  await stCard.locator("input[name=input]").fill(`${data}/bob_lr.csv`);
  await stCard.locator("input[name=keys]").fill("uid");
  await stCard.locator("button.approve").click();

  step = "alice sees the tables, bob that they went to alice only";
  {
    const row = pa.locator("#jobs-body tr").first();
    await row.locator("td.state", { hasText: "done" }).waitFor({ timeout: 60000 });
    const table = row.locator("table.stats").first();
    for (const col of ["x1", "y", "x2"])
      check(await table.locator(`tr[data-column=${col}]`).count() === 1, `no row for ${col}`);
    const heads = await table.locator("th").allInnerTexts();
    check(heads.join(",") === "column,count,mean,min,max", `the table's heads: ${heads}`);
    const count = await table.locator("tr[data-column=x1] td").nth(1).innerText();
    check(count === "60", `x1's count: ${count}`);
    check(await row.locator("table.corr").count() === 1, "no correlation table");
    await pa.screenshot({ path: `${shots}/alice-stats-done.png`, fullPage: true });
    const brow = pb.locator("#jobs-body tr").first();
    await brow.locator("td.state", { hasText: "done" }).waitFor({ timeout: 60000 });
    check((await brow.innerText()).includes("revealed to alice only"), "bob's stats row");
    check(await brow.locator("table.stats").count() === 0, "bob sees the tables");
  }
  console.log("console browser test: ok");
} catch (e) {
  console.error(`console browser test failed at "${step}": ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
