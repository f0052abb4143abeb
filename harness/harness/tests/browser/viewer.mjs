// Drives the mail viewer in a headless Chromium the Rust test started, as a
// user would: open the page, watch rows arrive, open them, read what shows.
//
// Usage: node viewer.mjs <browser-ws-endpoint> <viewer-url> <screenshot.png>
//
// The Rust test (../viewer_browser.rs) makes the calls and owns the
// expectations; this script only reports what the page shows. It speaks JSON
// lines: commands on stdin, one report per command on stdout. Diagnostics go
// to stderr.
//   {"open_email": "<trace>"}   wait for that email's row, open it, report
//   {"open_denied": "<trace>"}  wait for that denied call's row, open it, report
//   {"screenshot": "<trace>"}   open that email's row again and save the screenshot
import { createInterface } from 'node:readline';
import puppeteer from 'puppeteer-core';

const [endpoint, url, screenshotPath] = process.argv.slice(2);
if (!endpoint || !url || !screenshotPath) {
  console.error('usage: node viewer.mjs <browser-ws-endpoint> <viewer-url> <screenshot.png>');
  process.exit(2);
}
const TIMEOUT = 20_000;

const report = (object) => process.stdout.write(`${JSON.stringify(object)}\n`);

const browser = await puppeteer.connect({
  browserWSEndpoint: endpoint,
  defaultViewport: { width: 1500, height: 1100 },
});
const page = await browser.newPage();
page.on('console', (message) => console.error(`page console: ${message.type()} ${message.text()}`));
page.on('pageerror', (error) => console.error(`page error: ${error}`));
// Every request the page (and the mail frame) makes, to prove nothing left the viewer's origin.
const requests = [];
page.on('request', (request) => requests.push(request.url()));

await page.goto(url, { waitUntil: 'domcontentloaded', timeout: TIMEOUT });
await page.waitForSelector('#status[data-state="live"]', { timeout: TIMEOUT });
// A marker that a reload would wipe: rows must arrive in this same document.
await page.evaluate(() => { window.sameDocument = true; });
report({
  event: 'ready',
  rows: await page.$$eval('#rows tr', (rows) => rows.length),
});

async function rowSelector(kind, trace) {
  const selector = `#rows tr[data-kind="${kind}"][data-trace="${trace}"]`;
  await page.waitForSelector(selector, { timeout: TIMEOUT });
  return selector;
}

// The text and elements the sandboxed frame renders, read through DevTools'
// DOM on the frame's own session (the frame, of an opaque origin, may live
// in another renderer process), not through page script.
async function frameText() {
  const frame = await (await page.$('#html-frame')).contentFrame();
  if (!frame) return { found: false, text: '', tags: [] };
  const { root } = await frame.client.send('DOM.getDocument', { depth: -1, pierce: true });
  // In-process, the session is the page's: find the frame's document in it.
  const find = (node) => {
    if (node.nodeName === 'IFRAME' && (node.attributes || []).includes('html-frame')) return node.contentDocument;
    for (const child of [...(node.children || []), ...(node.contentDocument ? [node.contentDocument] : [])]) {
      const found = find(child);
      if (found) return found;
    }
    return null;
  };
  const document = find(root) || root;
  const texts = [];
  const tags = new Set();
  const walk = (node) => {
    if (node.nodeType === 3) texts.push(node.nodeValue);
    if (node.nodeType === 1) tags.add(node.nodeName.toLowerCase());
    for (const child of node.children || []) walk(child);
  };
  walk(document);
  return { found: true, url: frame.url(), text: texts.join(' ').replace(/\s+/g, ' ').trim(), tags: [...tags] };
}

async function shown() {
  return page.evaluate(() => ({
    sameDocument: window.sameDocument === true,
    hops: [...document.querySelectorAll('#hops li.hop')].map((li) => ({
      step: li.dataset.step,
      decision: li.dataset.decision,
      text: li.textContent,
    })),
    logs: Object.fromEntries([...document.querySelectorAll('#logs pre.log')].map((pre) => [pre.dataset.lambda, pre.textContent])),
    logsError: document.querySelector('#logs-error').hidden ? null : document.querySelector('#logs-error').textContent,
    denial: document.querySelector('#denial').hidden ? null : document.querySelector('#denial').textContent,
    scenario: document.querySelector('#call-scenario').hidden ? null : document.querySelector('#call-scenario').textContent,
    messageShown: !document.querySelector('#message').hidden,
  }));
}

async function openRow(kind, trace) {
  const selector = await rowSelector(kind, trace);
  const row = await page.$eval(selector, (tr) => [...tr.cells].map((td) => td.textContent));
  await page.click(selector);
  // The call is loaded once its hops replace the loading line.
  await page.waitForSelector('#hops li.hop', { timeout: TIMEOUT });
  return row;
}

async function openEmail(trace) {
  const row = await openRow('email', trace);
  await page.waitForFunction(() => document.querySelector('#html-frame').srcdoc.length > 0
    && document.querySelector('#source').textContent.length > 0, { timeout: TIMEOUT });
  const message = await page.evaluate(() => ({
    subject: document.querySelector('#subject').textContent,
    text: document.querySelector('#text').textContent,
    sandbox: document.querySelector('#html-frame').getAttribute('sandbox'),
    download: document.querySelector('#download').getAttribute('href'),
    headers: [...document.querySelectorAll('#headers tr')].map((tr) => [tr.cells[0].textContent, tr.cells[1].textContent]),
    source: document.querySelector('#source').textContent,
  }));
  // Let the frame parse its document before reading it.
  let frame = await frameText();
  for (const started = Date.now(); !frame.text && Date.now() - started < TIMEOUT;) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    frame = await frameText();
  }
  return { row, message, frame, ...(await shown()) };
}

const commands = createInterface({ input: process.stdin });
try {
  for await (const line of commands) {
    if (!line.trim()) continue;
    const command = JSON.parse(line);
    if (command.open_email) {
      report({ event: 'email', ...(await openEmail(command.open_email)) });
    } else if (command.open_denied) {
      const row = await openRow('denied', command.open_denied);
      report({ event: 'denied', row, ...(await shown()) });
    } else if (command.screenshot) {
      await openEmail(command.screenshot);
      await page.screenshot({ path: screenshotPath, fullPage: true });
      const origin = new URL(url).origin;
      report({
        event: 'screenshot',
        path: screenshotPath,
        foreignRequests: requests.filter((r) => !r.startsWith(origin) && !r.startsWith('about:') && !r.startsWith('data:')),
      });
    } else {
      report({ event: 'error', message: `unknown command ${line}` });
    }
  }
} catch (error) {
  report({ event: 'error', message: String(error && error.stack || error) });
  try { await page.screenshot({ path: screenshotPath.replace(/\.png$/, '-failure.png'), fullPage: true }); } catch {}
} finally {
  await browser.disconnect();
}
