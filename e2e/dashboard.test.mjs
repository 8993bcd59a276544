// End-to-end test of the dashboard in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core): loads the demo set into a fresh SQLite file, starts
// `clearwatch serve` on 127.0.0.1, and walks an analyst's and a supervisor's day.
// Screenshots go to target/e2e/. Run: `cd e2e && npm install && npm test`.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = process.env.CLEARWATCH_BIN || path.join(root, 'target/debug/clearwatch');
const shots = path.join(root, 'target/e2e');
mkdirSync(shots, { recursive: true });
const work = mkdtempSync(path.join(tmpdir(), 'cw-e2e-'));
const db = `sqlite:${path.join(work, 'e2e.db')}`;
const port = 18080 + Math.floor(Math.random() * 1000);
const base = `http://127.0.0.1:${port}`;
const XSS_NAME = '<img src=x onerror=alert(1)>';
const XSS_MEMO = '<script>alert(1)</script>';
const PASSWORD = 'e2e-password-1';

let passed = 0;
let failed = 0;
let currentStep = '(setup)';
async function step(name, fn) {
  currentStep = name;
  try {
    await fn();
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`not ok - ${name}\n  ${String(e && e.stack || e).split('\n').join('\n  ')}`);
    throw e;
  }
}
function check(cond, msg) { if (!cond) { throw new Error(msg); } }

function cw(args, input) {
  const r = spawnSync(bin, ['--db', db, ...args], { cwd: root, input, encoding: 'utf8' });
  if (r.status !== 0) { throw new Error(`clearwatch ${args.join(' ')}: ${r.stderr}`); }
  return r.stdout;
}

cw(['demo', '--no-serve']);
// Account ids that would send a click elsewhere if a link were built from them unencoded.
const HOSTILE_IDS = ['../../admin/users', 'A1#x', 'a?b=c&d=e', '100%2e%2e', 'sp ace/slash', '..', '%00'];
const hostileCsv = path.join(work, 'hostile.csv');
writeFileSync(hostileCsv, 'tx_id,ts,from,to,amount,currency,type,merchant_id,channel,region,memo\n'
  + HOSTILE_IDS.map((id, i) => `HX${i},2026-01-10T10:0${i}:00Z,HOSTILE-HUB,"${id}",1.00,CNY,transfer,,,,\n`).join(''));
cw(['ingest', '--transactions', hostileCsv]);
cw(['users', 'add', 'ana', '--role', 'analyst'], `${PASSWORD}\n`);
cw(['users', 'add', 'sue', '--role', 'supervisor'], `${PASSWORD}\n`);
cw(['users', 'add', 'root', '--role', 'admin'], `${PASSWORD}\n`);

const server = spawn(bin, ['--db', db, 'serve', '--bind', `127.0.0.1:${port}`], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error('server did not start')), 30000);
  server.stdout.on('data', (d) => { if (String(d).includes('dashboard:')) { clearTimeout(t); resolve(); } });
  server.on('exit', (c) => reject(new Error(`server exited ${c}`)));
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const dialogs = [];
const foreign = [];
const cspErrors = [];
async function newPage(locale = 'en-US') {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 }, timezoneId: 'Asia/Shanghai', locale });
  const page = await ctx.newPage();
  page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) { cspErrors.push(`${currentStep} @ ${page.url()}: ${m.text()}`); } });
  await page.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.hostname !== '127.0.0.1') { foreign.push(u.href); return route.abort(); }
    return route.continue();
  });
  return page;
}
// English words (four letters or more) left on a page shown in another language: text
// outside data (ids, account links, holder names, memos, code, user names).
// User names and proper names, which are not translated.
const USER_NAMES = ['ana', 'sue', 'root', 'rita', 'clearwatch', 'NATS'];
async function englishLeft(page) {
  return page.evaluate((names) => {
    const data = 'code, pre, script, style, textarea, .memo, .note-body, .holder, .subject-id, a[href^="/accounts/"], [data-raw]';
    const words = [];
    const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      const el = n.parentElement;
      if (!el || el.closest(data) || !el.getClientRects().length) { continue; }
      for (const w of n.textContent.match(/[A-Za-z]{4,}/g) || []) {
        if (!names.includes(w)) { words.push(w); }
      }
    }
    return [...new Set(words)];
  }, USER_NAMES);
}
async function login(page, user) {
  await page.goto(`${base}/login`);
  await page.fill('#username', user);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL(`${base}/cases`), page.click('#login')]);
}

let graphEdges = 0;
let alertUrl;
try {
  const ana = await newPage();
  await step('analyst signs in', async () => {
    await login(ana, 'ana');
    check((await ana.textContent('#current-user')).includes('ana'), 'user not shown');
  });
  await step('the case queue shows one row per entity, with holder, rules, amount and deadline', async () => {
    const rows = ana.locator('#cases tbody tr');
    const n = await rows.count();
    check(n > 0, 'no case on the demo set');
    const subjects = await rows.evaluateAll((trs) => trs.map((t) => t.dataset.subject));
    check(new Set(subjects).size === subjects.length, `a subject has two rows: ${subjects.join(', ')}`);
    const scores = await rows.evaluateAll((trs) => trs.map((t) => Number(t.dataset.score)));
    check(scores.every((s, i) => i === 0 || scores[i - 1] >= s), `not ranked by risk: ${scores.join(', ')}`);
    // The top case folds several alerts; the alert queue lists each of them.
    const top = rows.first();
    const alertCount = Number(await top.locator('a.case-alerts').textContent());
    check(alertCount > 1, `the top case folds ${alertCount} alert`);
    check((await top.locator('.rule-chip').count()) > 1, 'the top case names one rule');
    check(/\d[\d,]*\.\d\d CNY/.test(await top.locator('td.amount').textContent()), 'no amount on the top case');
    check(/^\d{4}-\d\d-\d\d$/.test((await top.locator('td.due .sla').textContent()).trim()), 'no due date on the top case');
    check((await top.locator('.holder').count()) === 1, 'no holder name on the top case');
    // The bulk form sits above the table.
    const bulkY = (await ana.locator('#case-bulk fieldset.bulk').boundingBox()).y;
    const tableY = (await ana.locator('#cases').boundingBox()).y;
    check(bulkY < tableY, 'the bulk actions are below the table');
    await ana.screenshot({ path: path.join(shots, 'cases.png'), fullPage: true });
    await Promise.all([ana.waitForLoadState('load'), top.locator('a.case-alerts').click()]);
    await ana.waitForSelector('#queue tbody tr');
    check((await ana.locator('#queue tbody tr').count()) === alertCount, 'the case\'s alerts are not one click away');
    await ana.goto(`${base}/alerts`);
  });
  await step('queue filters by rule and subject with htmx: the URL changes, no page load', async () => {
    await ana.waitForFunction(() => typeof window.htmx === 'object' && window.htmx !== null);
    await ana.evaluate(() => { window.__cwSamePage = true; });
    const before = await ana.textContent('#total');
    await ana.selectOption('#f-rule', 'TC-04');
    await ana.fill('#f-subject', 'A00000236');
    await ana.click('#apply-filters');
    await ana.waitForURL((u) => u.search.includes('rule=TC-04') && u.search.includes('subject=A00000236'));
    await ana.waitForFunction(() => {
      const rows = Array.from(document.querySelectorAll('#queue tbody tr'));
      return rows.length > 0 && rows.every((r) => r.textContent.includes('A00000236') && r.textContent.includes('TC-04'));
    });
    check(await ana.evaluate(() => window.__cwSamePage === true), 'the filter reloaded the page instead of swapping the table');
    check((await ana.textContent('#total')) !== before, `the count did not change: ${before}`);
    await ana.screenshot({ path: path.join(shots, 'queue.png'), fullPage: true });
  });
  await step('sort and status links swap the table and keep the URL shareable', async () => {
    await ana.click('#sort-newest');
    await ana.waitForURL((u) => u.search.includes('sort=newest') && u.search.includes('rule=TC-04'));
    await ana.waitForSelector('#sort-newest.active');
    check((await ana.inputValue('#f-sort')) === 'newest', 'the filter form does not follow the sort link');
    await ana.click('#status-counts a[data-status="new"]');
    await ana.waitForURL((u) => u.search.includes('status=new'));
    await ana.waitForFunction(() => document.getElementById('f-status').value === 'new');
    check(await ana.evaluate(() => window.__cwSamePage === true), 'a link reloaded the page');
    const rows = await ana.locator('#queue tbody tr').count();
    check(rows >= 1, 'no new TC-04 alert on A00000236');
    check(await ana.locator('#queue tbody td.due .sla[data-sla]').count() === rows, 'a queue row has no deadline');
    // The pushed URL, opened afresh, is the same queue.
    const shared = ana.url();
    await ana.goto(shared);
    check(await ana.evaluate(() => window.__cwSamePage === undefined), 'not a fresh page');
    check((await ana.locator('#queue tbody tr').count()) === rows, 'the shared URL shows another queue');
    check((await ana.inputValue('#f-rule')) === 'TC-04', 'the form does not show the URL\'s filter');
  });
  await step('the pool alert shows its graph', async () => {
    await Promise.all([ana.waitForLoadState('load'), ana.locator('#queue a.alert-link').first().click()]);
    alertUrl = ana.url();
    await ana.waitForSelector('#graph[data-drawn]', { timeout: 15000 });
    const drawn = Number(await ana.getAttribute('#graph', 'data-drawn'));
    check(drawn > 1, `graph has ${drawn} nodes`);
    check(await ana.locator('#graph canvas').count() > 0, 'no canvas');
    check(await ana.locator('#balance svg path').count() === 1, 'no balance chart');
    check(await ana.locator('#transactions tbody tr').count() > 0, 'no transactions');
    const due = await ana.getAttribute('#deadline', 'data-due');
    check(/^\d{4}-\d{2}-\d{2}$/.test(due || ''), `no review deadline on the case: ${due}`);
    // The case header: the subject's name, risk, exposure and rules; its alerts beside.
    check((await ana.textContent('#case-subject')).trim().length > 0, 'no subject name in the header');
    check(/^\d+$/.test((await ana.textContent('#case-score')).trim()), 'no entity risk in the header');
    check(/\d/.test(await ana.textContent('#case-exposure')), 'no exposure in the header');
    check(await ana.locator('#case-rules .rule-chip').count() >= 1, 'no rules in the header');
    check(await ana.locator('#case-alerts tr[aria-current="true"]').count() === 1, 'the alert is not marked among its case\'s alerts');
    const mainBox = await ana.locator('.detail-main').boundingBox();
    const sideBox = await ana.locator('.detail-side').boundingBox();
    check(sideBox.x >= mainBox.x + mainBox.width, 'the case panel is not beside the detail');
    check(await ana.locator('#case-form').isVisible(), 'the case form is not in the side panel');
    await ana.screenshot({ path: path.join(shots, 'alert-detail.png'), fullPage: true });
    await ana.screenshot({ path: path.join(shots, 'alert-header.png') });
    await ana.locator('#graph').screenshot({ path: path.join(shots, 'alert-graph.png') });
    // A section link scrolls its section under the links, which stay in view.
    await ana.click('.section-nav a[href="#flow"]');
    await ana.waitForFunction(() => location.hash === '#flow');
    const nav = await ana.locator('.section-nav').boundingBox();
    const flow = await ana.locator('#flow').boundingBox();
    check(nav.y >= 0 && nav.y < 5, `the section links scrolled away: ${nav.y}`);
    check(flow.y >= nav.y + nav.height - 1 && flow.y < 120, `the fund flow is not under the links: ${flow.y}`);
    await ana.evaluate(() => window.scrollTo(0, 0));
  });
  await step('the graph draws one edge per pair, money left to right, labels apart', async () => {
    const g = await ana.evaluate(() => {
      const cy = window.clearwatchGraph;
      const pairs = new Set(cy.edges().map((e) => `${e.source().id()} ${e.target().id()}`));
      const subject = cy.nodes('[subject = 1]')[0];
      const boxes = cy.nodes().filter((n) => n.visible()).map((n) => {
        const b = n.boundingBox({ includeNodes: false, includeEdges: false, includeLabels: true });
        return { id: n.id(), x1: b.x1, x2: b.x2, y1: b.y1, y2: b.y2 };
      });
      const overlaps = [];
      for (let i = 0; i < boxes.length; i++) {
        for (let j = i + 1; j < boxes.length; j++) {
          const a = boxes[i], b = boxes[j];
          if (a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2) { overlaps.push(`${a.id} / ${b.id}`); }
        }
      }
      const payersLeft = subject.incomers('node').every((n) => n.position('x') < subject.position('x') || n.outgoers('node').length === 0 || subject.outgoers('node').contains(n));
      const payeesRight = subject.outgoers('node').every((n) => n.position('x') > subject.position('x'));
      return { edges: cy.edges().length, pairs: pairs.size, overlaps, payersLeft, payeesRight, labels: boxes.length };
    });
    const txPairs = await ana.evaluate(() => new Set([...document.querySelectorAll('#transactions tbody tr')]
      .map((r) => `${r.cells[2].textContent} ${r.cells[3].textContent}`)).size);
    check(g.edges === g.pairs, `${g.edges} edges for ${g.pairs} pairs`);
    graphEdges = g.edges;
    check(g.edges === txPairs, `${g.edges} edges, but the transactions have ${txPairs} pairs`);
    check(g.overlaps.length === 0, `node labels overlap: ${g.overlaps.slice(0, 5).join(', ')}`);
    check(g.labels > 1 && g.payersLeft && g.payeesRight, 'money does not run left to right through the subject');
  });
  await step('the balance chart peaks at the rule\'s peak balance and figures show thresholds', async () => {
    const peak = await ana.getAttribute('#balance svg', 'data-peak');
    const metric = (await ana.textContent('#metrics tr[data-metric="peak_balance"] .metric-value')).trim();
    check(peak === metric, `chart peak ${peak}, metric peak_balance ${metric}`);
    check(await ana.locator('#balance svg .tick-y').count() === 3, 'the chart has no amount axis');
    const payees = (await ana.textContent('#metrics tr[data-metric="payees"] .threshold')).trim();
    check(/^≥ \d+$/.test(payees), `payees threshold shown as ${JSON.stringify(payees)}`);
    check((await ana.textContent('#metrics tr[data-metric="payees"] .margin')).trim().startsWith('+'), 'no margin');
  });
  await step('graph filters hide pairs and an expanded node brings its counterparties', async () => {
    const visible = () => ana.evaluate(() => window.clearwatchGraph.edges().filter((e) => !e.hasClass('filtered')).length);
    const all = await visible();
    await ana.fill('#graph-min-amount', '100000000');
    check(await visible() === 0, 'the amount floor hid nothing');
    await ana.fill('#graph-min-amount', '0');
    check(await visible() === all, 'clearing the floor did not bring the pairs back');
    const slide = (v) => ana.evaluate((x) => {
      const r = document.getElementById('graph-until');
      r.value = x;
      r.dispatchEvent(new Event('input'));
    }, v);
    await slide('0');
    check(await visible() < all, 'the time range hid nothing');
    await slide('1000');
    check(await visible() === all, 'the whole range did not bring the pairs back');
    await ana.click('#graph-fit');
    const before = Number(await ana.getAttribute('#graph', 'data-drawn'));
    await ana.evaluate(() => {
      const cy = window.clearwatchGraph;
      const pick = cy.nodes('[subject = 0]').sort((a, b) => b.degree() - a.degree())[0];
      pick.emit('tap');
    });
    await ana.waitForSelector('#graph-expand');
    await ana.click('#graph-expand');
    await ana.waitForFunction((n) => Number(document.getElementById('graph').dataset.drawn) > n, before, { timeout: 10000 });
    await ana.locator('#graph').screenshot({ path: path.join(shots, 'alert-graph-expanded.png') });
  });
  await step('analyst adds a note and requests escalation', async () => {
    await ana.evaluate(() => { window.__cwSamePage = true; });
    await ana.fill('#note-body', `checked the pool ${XSS_MEMO}`);
    await ana.click('#add-note');
    await ana.waitForFunction((t) => document.getElementById('note-list').textContent.includes(t), `checked the pool ${XSS_MEMO}`);
    check(await ana.evaluate(() => window.__cwSamePage === true), 'adding a note reloaded the page');
    check((await ana.inputValue('#note-body')) === '', 'the note form was not cleared');
    check(await ana.locator('#graph canvas').count() > 0, 'the graph was lost');
    await ana.selectOption('#status', 'in_review');
    await Promise.all([ana.waitForLoadState('load'), ana.click('#save-case')]);
    check(await ana.getAttribute('#case-status', 'data-status') === 'in_review', 'not in review');
    await Promise.all([ana.waitForLoadState('load'), ana.click('#escalate')]);
    check(await ana.locator('#pending').count() === 1, 'no pending request');
    check(await ana.locator('#approve').count() === 0, 'analyst sees approve');
  });
  const sue = await newPage();
  await step('a supervisor approves the escalation', async () => {
    await login(sue, 'sue');
    await sue.goto(alertUrl);
    await Promise.all([sue.waitForLoadState('load'), sue.click('#approve')]);
    check(await sue.getAttribute('#case-status', 'data-status') === 'escalated', 'not escalated');
    await sue.screenshot({ path: path.join(shots, 'alert-escalated.png'), fullPage: true });
  });
  await step('the audit page shows the chain intact and the approval', async () => {
    await sue.goto(`${base}/audit`);
    check((await sue.getAttribute('#chain', 'class')) === 'ok', 'chain not intact');
    const actions = await sue.locator('#audit tr[data-action]').evaluateAll((rows) => rows.map((r) => r.dataset.action));
    for (const a of ['case.approve', 'case.request', 'case.note', 'case.status']) { check(actions.includes(a), `${a} missing`); }
    check((await sue.textContent('#audit')).includes('request approved'), 'actions are not named in words');
    await sue.screenshot({ path: path.join(shots, 'audit.png'), fullPage: true });
  });
  await step('a dismissal suppresses its rule on the subject: alerts hide, then return on expiry', async () => {
    // A subject with two new, unassigned alerts of one rule: dismiss one, suppress the rule.
    const groups = new Map();
    for (let page = 1; page <= 10; page += 1) {
      const resp = await ana.request.get(`${base}/api/v1/alerts?status=new&assignee=-&sort=oldest&page=${page}`);
      const { alerts } = await resp.json();
      for (const a of alerts) {
        const k = `${a.rule_id}|${a.subject.id}`;
        groups.set(k, [...(groups.get(k) || []), a]);
      }
      if (alerts.length === 0) { break; }
    }
    // Not the pool account the steps before and after look at.
    const pair = [...groups.values()].find((g) => g.length >= 2 && g[0].subject.id !== 'A00000236');
    check(pair, 'no subject with two new alerts of one rule on the demo set');
    const [dismissed, covered] = pair;
    const subject = dismissed.subject.id;
    const rule = dismissed.rule_id;
    // ana's zone is UTC here, so the form's local time is UTC; 75 s to see it active.
    const expiresAt = Date.now() + 75000;
    await ana.goto(`${base}/alerts/${encodeURIComponent(dismissed.id)}`);
    await ana.fill('#dismiss-reason', 'the group pays its own shops');
    await ana.selectOption('#suppress', 'rule');
    await ana.fill('#suppress-until', new Date(expiresAt).toISOString().slice(0, 19));
    await ana.locator('#case').screenshot({ path: path.join(shots, 'alert-dismiss-suppress.png') });
    await Promise.all([ana.waitForLoadState('load'), ana.click('#dismiss')]);
    check(await ana.locator('#pending-suppression').count() === 1, 'the request does not show its suppression');
    await sue.goto(`${base}/alerts/${encodeURIComponent(dismissed.id)}`);
    await Promise.all([sue.waitForLoadState('load'), sue.click('#approve')]);
    check(await sue.getAttribute('#case-status', 'data-status') === 'dismissed', 'not dismissed');
    const queue = `${base}/alerts?rule=${encodeURIComponent(rule)}&subject=${encodeURIComponent(subject)}`;
    await ana.goto(queue);
    check(await ana.locator(`tr[data-alert="${covered.id}"]`).count() === 0, 'the covered alert is still in the queue');
    check(await ana.locator('#hidden-note').count() === 1, 'the queue does not say alerts are hidden');
    await Promise.all([ana.waitForLoadState('load'), ana.click('#hidden-note a')]);
    await ana.waitForSelector(`tr[data-alert="${covered.id}"]`);
    await ana.goto(`${base}/alerts/${encodeURIComponent(covered.id)}`);
    check(await ana.getAttribute('#suppressed-note', 'data-hidden') === 'true', 'the alert page does not say it is hidden');
    await ana.goto(`${base}/suppressions`);
    const row = ana.locator('#suppressions tbody tr[data-state="active"]');
    check(await row.count() === 1, 'the suppression is not listed as active');
    check(Number(await row.locator('.hidden-count').textContent()) >= 1, 'the suppression hides nothing');
    await ana.screenshot({ path: path.join(shots, 'suppressions.png'), fullPage: true });
    const zh = await newPage('zh-CN');
    await login(zh, 'sue');
    await zh.goto(`${base}/suppressions`);
    check((await zh.textContent('#suppressions thead')).includes('隐藏的预警'), 'the suppressions page is not in Chinese');
    check(await zh.locator('#suppressions button.lift').count() === 1, 'a supervisor cannot lift it');
    await zh.screenshot({ path: path.join(shots, 'suppressions-zh.png'), fullPage: true });
    await zh.close();
    // Expiry needs no one: once its time is up the alert is back.
    await ana.waitForTimeout(Math.max(0, expiresAt - Date.now() + 1000));
    await ana.goto(queue);
    check(await ana.locator(`tr[data-alert="${covered.id}"]`).count() === 1, 'the alert did not return on expiry');
    check(await ana.locator('#hidden-note').count() === 0, 'alerts still hidden after expiry');
    await ana.goto(`${base}/suppressions?state=expired`);
    check(await ana.locator('#suppressions tbody tr[data-state="expired"]').count() === 1, 'not listed as expired');
  });
  await step('a user sets a time zone and times follow it', async () => {
    await ana.goto(`${base}/profile`);
    await ana.selectOption('#time-zone', 'America/New_York');
    await Promise.all([ana.waitForURL(`${base}/profile?saved=1`), ana.click('#save-profile')]);
    await ana.goto(alertUrl);
    const times = await ana.locator('#note-list time').allTextContents();
    check(times.length > 0 && times.every((t) => /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d E[SD]T$/.test(t)), `times not in New York time: ${times.join(', ')}`);
  });
  await step('an admin adds a user and changes a role, audited', async () => {
    const adm = await newPage();
    await login(adm, 'root');
    await adm.goto(`${base}/admin/users`);
    await adm.fill('#new-name', 'rita');
    await adm.selectOption('#new-role', 'rule_author');
    await adm.fill('#new-password', PASSWORD);
    await Promise.all([adm.waitForURL(/done=add/), adm.click('#add-user-submit')]);
    check((await adm.getAttribute('tr[data-user="rita"] .role', 'data-role')) === 'rule_author', 'rita not added');
    await adm.selectOption('tr[data-user="rita"] select[name="role"]', 'auditor');
    await Promise.all([adm.waitForURL(/done=change/), adm.click('tr[data-user="rita"] .set-role')]);
    check((await adm.getAttribute('tr[data-user="rita"] .role', 'data-role')) === 'auditor', 'role not changed');
    await adm.screenshot({ path: path.join(shots, 'users.png'), fullPage: true });
    await adm.goto(`${base}/audit`);
    const actions = await adm.locator('#audit tr[data-action]').evaluateAll((rows) => rows.map((r) => r.dataset.action));
    for (const a of ['user.add', 'user.role', 'user.time_zone']) { check(actions.some((x) => x.includes(a)), `${a} missing`); }
    check((await adm.getAttribute('#chain', 'class')) === 'ok', 'chain not intact');
    const other = await newPage();
    await login(other, 'rita');
    await other.goto(`${base}/admin/users`);
    check((await other.textContent('body')).includes('Your role does not allow this.'), 'a non-admin sees the users page');
  });
  await step('hostile names and memos render as text', async () => {
    await ana.goto(`${base}/accounts/A00000034`);
    check((await ana.textContent('#holder')).includes(XSS_NAME), 'hostile name not shown literally');
    check(await ana.locator('img[src="x"]').count() === 0, 'an injected img element exists');
    await ana.goto(`${base}/accounts/A00000329`);
    check((await ana.textContent('body')).includes(XSS_MEMO), 'hostile memo not shown literally');
    await ana.screenshot({ path: path.join(shots, 'account-xss.png'), fullPage: true });
    await ana.goto(`${base}/alerts?subject=A00000034`);
    await ana.waitForTimeout(300);
    check(dialogs.length === 0, `dialogs opened: ${dialogs.join(', ')}`);
  });
  await step('every account link of a hostile id leads to that account', async () => {
    await ana.goto(`${base}/accounts/HOSTILE-HUB`);
    const hrefs = await ana.locator('a[href*="account"]').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    const targets = hrefs.filter((h) => !h.endsWith('/HOSTILE-HUB'));
    check(targets.length >= HOSTILE_IDS.length, `expected a link per hostile id, found ${targets.join(' ')}`);
    const seen = new Set();
    for (let i = 0; i < targets.length; i += 1) {
      await ana.goto(`${base}/accounts/HOSTILE-HUB`);
      await Promise.all([ana.waitForLoadState('load'), ana.locator(`a[href="${targets[i].replace(/"/g, '\\"')}"]`).first().click()]);
      const u = new URL(ana.url());
      check(u.origin === base, `a link left the server: ${ana.url()}`);
      check(u.pathname.startsWith('/account'), `${targets[i]} led to ${u.pathname}`);
      seen.add(await ana.textContent('#account-id'));
    }
    for (const id of HOSTILE_IDS) { check(seen.has(id), `no link reached the page of ${id}: ${[...seen].join(' | ')}`); }
  });
  await step('the account page charts money per day and names each counterparty\'s direction', async () => {
    await ana.goto(`${base}/accounts/A00000236`);
    check(await ana.locator('#counterparties thead th').count() === 4, 'the counterparty table has no headers');
    const dirs = await ana.locator('#counterparties tbody tr td:nth-child(2)').allTextContents();
    check(dirs.some((d) => d.includes('→')) && dirs.some((d) => d.includes('←')), `directions: ${dirs.join(', ')}`);
    check(await ana.locator('#activity svg rect.in').count() > 0, 'no money-in bars');
    check(await ana.locator('#activity svg rect.out').count() > 0, 'no money-out bars');
    await ana.screenshot({ path: path.join(shots, 'account.png'), fullPage: true });
  });
  await step('the alert and account pages in Chinese', async () => {
    const zh = await newPage('zh-CN');
    await login(zh, 'ana');
    await zh.goto(alertUrl);
    await zh.waitForSelector('#graph[data-drawn]', { timeout: 15000 });
    check((await zh.textContent('#metrics thead')).includes('触发条件'), 'the figures table is not in Chinese');
    const cjk = /[\u4e00-\u9fff]/;
    check(cjk.test(await zh.textContent('#alert-title')), 'the rule title is not in Chinese');
    check(cjk.test(await zh.textContent('#summary')), 'the summary is not in Chinese');
    const figures = await zh.locator('#metrics tbody th').allTextContents();
    check(figures.length > 0 && figures.every((f) => cjk.test(f)), `figures not named in Chinese: ${figures.join(', ')}`);
    let english = await englishLeft(zh);
    check(english.length === 0, `English on the Chinese alert page: ${english.join(', ')}`);
    await zh.screenshot({ path: path.join(shots, 'alert-detail-zh.png'), fullPage: true });
    await zh.goto(`${base}/cases`);
    check((await zh.textContent('#cases thead')).includes('命中规则'), 'the case queue is not in Chinese');
    english = await englishLeft(zh);
    check(english.length === 0, `English on the Chinese case queue: ${english.join(', ')}`);
    await zh.screenshot({ path: path.join(shots, 'cases-zh.png'), fullPage: true });
    await zh.goto(`${base}/accounts/A00000236`);
    check((await zh.textContent('#counterparties thead')).includes('交易对手'), 'the counterparty table is not in Chinese');
    english = await englishLeft(zh);
    check(english.length === 0, `English on the Chinese account page: ${english.join(', ')}`);
    await zh.screenshot({ path: path.join(shots, 'account-zh.png'), fullPage: true });
    for (const [page, shot] of [['/alerts', 'queue-zh.png'], ['/rules', 'rules-zh.png'], ['/suppressions', 'suppressions-list-zh.png']]) {
      await zh.goto(`${base}${page}`);
      english = await englishLeft(zh);
      check(english.length === 0, `English on the Chinese ${page}: ${english.join(', ')}`);
      await zh.screenshot({ path: path.join(shots, shot), fullPage: true });
    }
    await zh.close();
  });
  await step('a case detected before National Day is due after it, on the working Saturday count', async () => {
    // A00000001's alert, as if detected on Wednesday 30 September 2026: 1 to 7 October are
    // holidays and Saturday 10 October is worked, so ten working days end on 20 October
    // (weekends only would give 14 October).
    const backdate = spawnSync('python3', ['-c', [
      'import sqlite3, sys',
      'c = sqlite3.connect(sys.argv[1])',
      'n = c.execute("UPDATE alerts SET created_at = \'2026-09-30T02:00:00Z\' WHERE subject_id = \'A00000001\'").rowcount',
      'c.commit()',
      'print(n)',
    ].join('\n'), path.join(work, 'e2e.db')], { encoding: 'utf8' });
    check(backdate.status === 0 && Number(backdate.stdout) >= 1, `backdating failed: ${backdate.stderr}`);
    await ana.goto(`${base}/cases?subject=A00000001&status=any`);
    const due = (await ana.locator('#cases tr[data-subject="A00000001"] td.due .sla').textContent()).trim();
    check(due === '2026-10-20', `the deadline does not skip National Day: ${due}`);
    await ana.locator('#cases tr[data-subject="A00000001"] a.case-top').click();
    await ana.waitForSelector('#deadline');
    check((await ana.getAttribute('#deadline', 'data-due')) === '2026-10-20', 'the alert page gives another deadline');
    check((await ana.getAttribute('#deadline', 'data-sla')) === 'overdue', 'a deadline in October is not overdue in December');
  });
  await step('a supervisor drafts a new rule and backtests it without a file', async () => {
    const sup = await newPage();
    await login(sup, 'sue');
    await sup.goto(`${base}/rules`);
    await Promise.all([sup.waitForURL(`${base}/rules/new`), sup.click('#new-rule')]);
    const draft = (await sup.inputValue('#rule-text')).replace('default: 10,', 'default: 3,');
    check(draft.includes('id: NEW-01') && draft.includes('default: 3,'), 'no skeleton in the editor');
    await sup.fill('#rule-text', draft);
    await Promise.all([sup.waitForURL(`${base}/rules/new/backtest`), sup.click('#backtest')]);
    check(await sup.locator('#lint-box .ok').count() === 1, 'the draft did not lint clean');
    check(await sup.locator('#backtest tr[data-change="appears"]').count() > 0, 'the draft found nothing on the demo');
    check(await sup.locator('#publish').count() === 0, 'a draft offers publishing');
    await sup.screenshot({ path: path.join(shots, 'rule-new.png'), fullPage: true });
    await sup.close();
  });
  await step('a supervisor keeps an allow list; an analyst sees it, in both languages', async () => {
    const sup = await newPage();
    await login(sup, 'sue');
    await sup.goto(`${base}/lists`);
    await sup.fill('#list-name', 'group_treasury');
    await sup.selectOption('#list-kind', 'allow');
    await sup.fill('#list-description', 'groups paying their own shops');
    await Promise.all([sup.waitForURL(`${base}/lists/group_treasury`), sup.click('#list-create')]);
    await sup.fill('#entry-value', 'A00000236');
    await sup.fill('#entry-reason', 'the group treasury of case 12');
    await Promise.all([sup.waitForURL(`${base}/lists/group_treasury`), sup.click('#entry-add')]);
    check(await sup.locator('#entries tr[data-state="active"][data-value="A00000236"]').count() === 1, 'the entry is not in force');
    await sup.screenshot({ path: path.join(shots, 'list.png'), fullPage: true });
    await sup.close();
    await ana.goto(`${base}/lists/group_treasury`);
    check(await ana.locator('#add-entry').count() === 0, 'an analyst is offered the allow list form');
    await ana.goto(`${base}/lists`);
    check((await ana.textContent('#lists tr[data-list="group_treasury"] .active-count')).trim() === '1', 'the list does not count its entry');
    await ana.screenshot({ path: path.join(shots, 'lists.png'), fullPage: true });
    const zh = await newPage('zh-CN');
    await login(zh, 'ana');
    for (const [page, shot] of [['/lists', 'lists-zh.png'], ['/lists/group_treasury', 'list-zh.png']]) {
      await zh.goto(`${base}${page}`);
      const english = await englishLeft(zh);
      check(english.length === 0, `English on the Chinese ${page}: ${english.join(', ')}`);
      await zh.screenshot({ path: path.join(shots, shot), fullPage: true });
    }
    await zh.close();
  });
  await step('every other page in both languages, with no English on the Chinese ones', async () => {
    const pages = [
      ['sue', '/audit', 'audit'],
      ['sue', '/rules/TC-04', 'rule'],
      ['sue', '/rules/new', 'rule-new-page'],
      ['root', '/admin/users', 'users-page'],
      ['root', '/admin/stream', 'stream'],
      ['ana', '/profile', 'profile'],
      ['ana', '/password', 'password'],
      ['ana', '/suppressions', 'suppressions-page'],
    ];
    for (const locale of ['en-US', 'zh-CN']) {
      const suffix = locale === 'zh-CN' ? '-zh' : '';
      const signedIn = {};
      for (const [user, url, name] of pages) {
        if (!signedIn[user]) {
          signedIn[user] = await newPage(locale);
          await login(signedIn[user], user);
        }
        const p = signedIn[user];
        const r = await p.goto(`${base}${url}`);
        check(r.ok(), `${url} answered ${r.status()}`);
        if (locale === 'zh-CN') {
          const english = await englishLeft(p);
          check(english.length === 0, `English on the Chinese ${url}: ${english.join(', ')}`);
        }
        await p.screenshot({ path: path.join(shots, `${name}${suffix}.png`), fullPage: true });
      }
      for (const p of Object.values(signedIn)) { await p.close(); }
      const out = await newPage(locale);
      await out.goto(`${base}/login`);
      if (locale === 'zh-CN') {
        const english = await englishLeft(out);
        check(english.length === 0, `English on the Chinese sign-in page: ${english.join(', ')}`);
      }
      await out.screenshot({ path: path.join(shots, `login${suffix}.png`), fullPage: true });
      await out.close();
    }
  });
  await step('the exported evidence report opens with no network request and no console error', async () => {
    await ana.goto(alertUrl);
    const href = await ana.getAttribute('#export', 'href');
    check(href && href.endsWith('/export'), 'no export link on the alert page');
    const resp = await ana.request.get(`${base}${href}`);
    check(resp.status() === 200, `export answered ${resp.status()}`);
    const zip = path.join(work, 'bundle.zip');
    writeFileSync(zip, await resp.body());
    const verify = spawnSync(bin, ['evidence', 'verify', zip], { cwd: root, encoding: 'utf8' });
    check(verify.status === 0, `evidence verify: ${verify.stdout}`);
    const unpack = spawnSync('python3', ['-c', 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("report.html", sys.argv[2])', zip, work]);
    check(unpack.status === 0, `cannot unpack report.html: ${unpack.stderr}`);
    const report = await browser.newPage();
    const outbound = [];
    const consoleErrors = [];
    report.on('request', (r) => { if (!r.url().startsWith('file:')) { outbound.push(r.url()); } });
    report.on('console', (m) => { if (m.type() === 'error') { consoleErrors.push(m.text()); } });
    report.on('pageerror', (e) => consoleErrors.push(String(e)));
    await report.goto(`file://${path.join(work, 'report.html')}`);
    await report.waitForLoadState('load');
    check(await report.locator('svg circle, svg rect').count() > 1, 'no fund-flow graph in the report');
    check((await report.textContent('body')).includes('A00000236'), 'the report does not name the subject');
    await report.screenshot({ path: path.join(shots, 'report.png'), fullPage: false });
    const reportEdges = await report.locator('svg.flow line').count();
    check(reportEdges === graphEdges, `the report draws ${reportEdges} pairs, the dashboard ${graphEdges}`);
    await report.locator('svg.flow').screenshot({ path: path.join(shots, 'report-graph.png') });
    check(outbound.length === 0, `the report made requests: ${outbound.join(', ')}`);
    check(consoleErrors.length === 0, `console errors: ${consoleErrors.join(' | ')}`);
    await report.close();
    // Exported by a reader of Chinese, the case file speaks Chinese.
    const zh = await newPage('zh-CN');
    await login(zh, 'ana');
    const zhResp = await zh.request.get(`${base}${href}`, { headers: { 'Accept-Language': 'zh-CN' } });
    check(zhResp.status() === 200, `zh export answered ${zhResp.status()}`);
    const zhZip = path.join(work, 'bundle-zh.zip');
    writeFileSync(zhZip, await zhResp.body());
    const zhDir = path.join(work, 'zh');
    const zhUnpack = spawnSync('python3', ['-c', 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("report.html", sys.argv[2])', zhZip, zhDir]);
    check(zhUnpack.status === 0, `cannot unpack the Chinese report.html: ${zhUnpack.stderr}`);
    await zh.close();
    const zhReport = await browser.newPage();
    await zhReport.goto(`file://${path.join(zhDir, 'report.html')}`);
    check((await zhReport.getAttribute('html', 'lang')) === 'zh-CN', 'the report is not marked Chinese');
    check((await zhReport.textContent('#institution')).includes('报告机构'), 'the report headings are not in Chinese');
    await zhReport.screenshot({ path: path.join(shots, 'report-zh.png'), fullPage: false });
    await zhReport.close();
  });
  await step('no request left the machine and no CSP violation', async () => {
    check(foreign.length === 0, `requests to other hosts: ${foreign.join(', ')}`);
    check(cspErrors.length === 0, `CSP: ${cspErrors.join(' | ')}`);
  });
} catch (e) {
  // Reported by step().
} finally {
  await browser.close();
  server.kill('SIGINT');
}
console.log(`screenshots: ${shots}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
