// The harness mail viewer. Everything that comes from mail or logs is put
// into the page as text (textContent), never as markup; the HTML part is
// shown only in a sandboxed frame (no scripts, no remote loads).
'use strict';

const $ = (selector) => document.querySelector(selector);

// An element with attributes and children; strings become text nodes.
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key.startsWith('data-')) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

let selected = null;

function time(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

function rowElement(row) {
  const call = row.scenario
    ? el('td', {}, row.scenario)
    : el('td', { className: 'trace' }, row.trace || '');
  const subject = row.kind === 'denied' ? `denied: ${row.subject}` : row.subject;
  const tr = el('tr', { 'data-kind': row.kind, 'data-trace': row.trace || '', 'data-id': row.id || '' },
    el('td', {}, time(row.time_ms)),
    el('td', {}, row.from),
    el('td', {}, row.to.join(', ')),
    el('td', { title: row.denial || '' }, subject),
    call);
  const key = row.id || row.trace;
  if (selected && selected === key) tr.setAttribute('aria-selected', 'true');
  tr.addEventListener('click', () => select(row, tr));
  return tr;
}

async function loadRows() {
  const rows = await getJSON('/ui/rows');
  $('#rows').replaceChildren(...rows.map(rowElement));
  $('#empty').hidden = rows.length > 0;
  const emails = rows.filter((r) => r.kind === 'email').length;
  $('#count').textContent = `${emails} email${emails === 1 ? '' : 's'}, ${rows.length - emails} denied`;
}

async function select(row, tr) {
  selected = row.id || row.trace;
  for (const other of document.querySelectorAll('#rows tr')) other.removeAttribute('aria-selected');
  tr.setAttribute('aria-selected', 'true');
  $('#detail').hidden = false;
  $('#message').hidden = row.kind !== 'email';
  const denial = $('#denial');
  denial.hidden = !row.denial;
  denial.textContent = row.denial ? `Denied: ${row.denial}` : '';
  const work = [];
  if (row.kind === 'email') work.push(showMessage(row.id));
  if (row.trace) work.push(showCall(row.trace));
  else clearCall();
  await Promise.all(work);
}

async function showMessage(id) {
  const base = `/api/v1/message/${encodeURIComponent(id)}`;
  const [message, headers, source] = await Promise.all([
    getJSON(base),
    getJSON(`${base}/headers`),
    fetch(`${base}/raw`).then((r) => r.text()),
  ]);
  $('#subject').textContent = message.Subject;
  const address = (a) => (a.Name ? `${a.Name} <${a.Address}>` : a.Address);
  const meta = [
    ['From', message.From ? address(message.From) : ''],
    ['To', message.To.map(address).join(', ')],
    ['Cc', message.Cc.map(address).join(', ')],
    ['Date', message.Date],
    ['Message-ID', message.MessageID],
    ['Size', `${message.Size} bytes`],
  ].filter(([, value]) => value);
  $('#meta').replaceChildren(...meta.flatMap(([name, value]) => [el('dt', {}, name), el('dd', {}, value)]));
  const frame = $('#html-frame');
  frame.hidden = !message.HTML;
  $('#no-html').hidden = Boolean(message.HTML);
  // srcdoc is a property, not markup in this page: the frame is sandboxed
  // (no scripts, opaque origin) and inherits this page's content policy.
  frame.srcdoc = message.HTML || '';
  $('#text').textContent = message.Text;
  $('#headers').replaceChildren(...Object.entries(headers).flatMap(([name, values]) =>
    values.map((value) => el('tr', {}, el('th', {}, name), el('td', {}, value)))));
  $('#source').textContent = source;
  const download = $('#download');
  download.href = `${base}/raw?dl=1`;
  download.download = `${id}.eml`;
}

function clearCall() {
  $('#call-trace').textContent = '';
  $('#hops').replaceChildren();
  $('#logs').replaceChildren();
}

async function showCall(trace) {
  $('#call-trace').textContent = trace;
  $('#hops').replaceChildren(el('li', {}, 'loading…'));
  const call = await getJSON(`/ui/call/${encodeURIComponent(trace)}`);
  const scenario = $('#call-scenario');
  scenario.hidden = !call.scenario;
  scenario.textContent = call.scenario ? `scenario: ${call.scenario}` : '';
  $('#hops').replaceChildren(...call.hops.map((hop) => el('li', { className: 'hop', 'data-step': hop.step, 'data-decision': hop.decision || '' },
    el('span', { className: 'step' }, hop.step), ' ',
    el('span', { className: 'subject' }, hop.subject), ' ',
    hop.decision ? el('span', { className: 'decision', 'data-decision': hop.decision }, hop.decision.toUpperCase()) : null,
    hop.explanation ? el('div', { className: 'explanation' }, hop.explanation) : null,
    hop.deciding.length
      ? el('ul', { className: 'deciding' }, ...hop.deciding.map((s) => el('li', {}, `${s.kind} policy ${s.policy}, statement ${s.sid_or_index}`)))
      : null)));
  const logsError = $('#logs-error');
  logsError.hidden = !call.logs_error;
  logsError.textContent = call.logs_error || '';
  const logs = Object.entries(call.logs);
  $('#logs').replaceChildren(...(logs.length
    ? logs.flatMap(([lambda, text]) => [el('h4', {}, lambda), el('pre', { className: 'log', 'data-lambda': lambda }, text)])
    : [el('p', {}, 'No log lines of this call (yet).')]));
}

for (const button of document.querySelectorAll('#tabs button')) {
  button.addEventListener('click', () => {
    for (const other of document.querySelectorAll('#tabs button')) other.setAttribute('aria-pressed', String(other === button));
    for (const tab of document.querySelectorAll('.tab')) tab.hidden = tab.dataset.tab !== button.dataset.tab;
  });
}

$('#delete-all').addEventListener('click', async () => {
  await fetch('/api/v1/messages', { method: 'DELETE' });
  $('#detail').hidden = true;
  selected = null;
  await loadRows();
});

// Live list: reload it whenever the server says something changed; changes
// that come in while a reload runs are folded into one more reload.
let loading = null;
let again = false;
function reload() {
  if (loading) { again = true; return; }
  loading = loadRows()
    .catch((err) => console.error(err))
    .finally(() => { loading = null; if (again) { again = false; reload(); } });
}

const events = new EventSource('/events');
const status = $('#status');
events.addEventListener('hello', () => { status.dataset.state = 'live'; status.textContent = 'live'; reload(); });
events.addEventListener('change', reload);
events.addEventListener('error', () => { status.dataset.state = 'offline'; status.textContent = 'reconnecting…'; });
reload();
