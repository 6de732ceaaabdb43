// A user in Debian's Chromium, driven by playwright-core: signs in through the form (typing,
// then Enter), opens each page given, approves a waiver, makes an enrolment token, uploads
// and assigns a policy and asks an agent to scan now when asked, saves a screenshot of each page, runs axe-core on each, and records every console
// error, page error and failed request. Prints one JSON report on
// stdout; the Rust test (tests/server/ui.rs) judges it.
//
// Usage: node browse.mjs '{"base": "https://127.0.0.1:PORT", "user": "...", "password": "...",
//                          "pages": [{"name": "fleet", "path": "/ui/"}], "out": "/dir",
//                          "approve": {"check": "POLICY:ID", "note": "..."}, "token_group": "web",
//                          "policy": {"file_name": "…", "content": "…", "group": "web",
//                                     "schedule": "0 0 1 1 *", "agent": "ID"}}'
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// Where setup-test-deps.sh installed them (ES modules do not search NODE_PATH).
const modules = process.env.RAMPART_UI_MODULES ?? '/opt/rampart-test/ui/node_modules';
// playwright-core is CommonJS: its exports arrive as the module's default.
const playwright = await import(pathToFileURL(join(modules, 'playwright-core/index.js')).href);
const chromium = playwright.chromium ?? playwright.default.chromium;
const axeSource = readFileSync(join(modules, 'axe-core/axe.min.js'), 'utf8');

const job = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.RAMPART_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  // The machine's flags: no sandbox as root, no GPU, and none of Chromium's own traffic
  // (the network here is closed).
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const report = { signed_in: false, pages: [], console_errors: [], failed_requests: [] };
try {
  // The server's certificate is from its own CA, which this browser profile does not hold.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') report.console_errors.push(`${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => report.console_errors.push(`${page.url()}: ${e.message}`));
  // A request the browser itself gave up on when the page moved on (the icon of a page left
  // at once) is not a failure.
  page.on('requestfailed', (r) => {
    const why = r.failure()?.errorText;
    if (why !== 'net::ERR_ABORTED') report.failed_requests.push(`${r.url()}: ${why}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) {
      report.failed_requests.push(`${r.url()}: HTTP ${r.status()}`);
    }
  });

  // Signing in: the dashboard sends an anonymous browser to the form.
  await page.goto(`${job.base}/ui/`);
  report.login_url = new URL(page.url()).pathname;
  await page.screenshot({ path: join(job.out, 'login.png'), fullPage: true });
  await page.getByLabel('User name').fill(job.user);
  await page.getByLabel('Password', { exact: true }).fill(job.password);
  await Promise.all([page.waitForURL(`${job.base}/ui/`), page.keyboard.press('Enter')]);
  report.signed_in = true;

  // axe-core on the page shown, through the DevTools protocol: the page's own policy forbids
  // inline scripts, rightly.
  const audit = async () => {
    await page.evaluate(`${axeSource};0`);
    return page.evaluate(async () => {
      const r = await globalThis.axe.run(document, { resultTypes: ['violations'] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
    });
  };
  const record = async (name, path, status) => {
    await page.screenshot({ path: join(job.out, `${name}.png`), fullPage: true });
    report.pages.push({
      name,
      path,
      status,
      title: await page.title(),
      h1: await page.locator('h1').first().textContent(),
      violations: await audit(),
    });
  };

  for (const p of job.pages) {
    const response = await page.goto(`${job.base}${p.path}`);
    await record(p.name, p.path, response.status());
  }

  // Approving a waiver someone else asked for: a note, then the Approve button.
  if (job.approve) {
    await page.goto(`${job.base}/ui/waivers`);
    await page.getByLabel(`Note on ${job.approve.check}`).fill(job.approve.note);
    await Promise.all([
      page.waitForURL(/\/ui\/waivers\?done=approved$/),
      page.getByRole('button', { name: 'Approve' }).click(),
    ]);
    report.approved = await page.getByRole('status').textContent();
    await record('waivers-approved', '/ui/waivers?done=approved', 200);
  }

  // Making an enrolment token: the group, then the button; the token is shown once.
  if (job.token_group) {
    await page.goto(`${job.base}/ui/tokens`);
    await page.getByLabel('Group the agents join').fill(job.token_group);
    const [made] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/ui/tokens')),
      page.getByRole('button', { name: 'Make the token' }).click(),
    ]);
    await page.waitForLoadState();
    report.token = await page.locator('#new-token').inputValue();
    await record('token-made', '/ui/tokens', made.status());
  }
  // Pushing a policy: the file chosen and uploaded, assigned to a group; then "scan now" on
  // an agent of that group.
  if (job.policy) {
    await page.goto(`${job.base}/ui/policies`);
    await page.getByLabel('Policy file').setInputFiles({
      name: job.policy.file_name,
      mimeType: 'application/yaml',
      buffer: Buffer.from(job.policy.content),
    });
    await Promise.all([
      page.waitForURL(/\/ui\/policies\/[^/?]+\?done=uploaded$/),
      page.getByRole('button', { name: 'Upload' }).click(),
    ]);
    report.uploaded = new URL(page.url()).pathname;
    await page.getByLabel('Group name or agent id').fill(job.policy.group);
    await page.getByLabel(/^Schedule/).fill(job.policy.schedule);
    await Promise.all([
      page.waitForURL(/\?done=assigned$/),
      page.getByRole('button', { name: 'Assign', exact: true }).click(),
    ]);
    report.assigned = await page.getByRole('status').textContent();
    await record('policy', report.uploaded, 200);
    await page.goto(`${job.base}/ui/agents/${job.policy.agent}`);
    await Promise.all([
      page.waitForURL(/\?done=scan$/),
      page.getByRole('button', { name: 'Scan now' }).click(),
    ]);
    report.scan = await page.getByRole('status').textContent();
    // The run arrives live: the page is not reloaded; its run history grows by itself.
    const rows = '#runs-h ~ table tbody tr';
    const before = await page.locator(rows).count();
    console.error('rampart: waiting for a run');
    await page.waitForFunction(([sel, n]) => document.querySelectorAll(sel).length > n, [rows, before], { timeout: 30000 });
    report.live_runs = [before, await page.locator(rows).count()];
    await record('agent-live', new URL(page.url()).pathname, 200);
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
