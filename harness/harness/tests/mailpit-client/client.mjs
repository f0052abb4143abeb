// Reads the harness's mail viewer with mailpit-api, a Mailpit client nobody
// here wrote, exactly as a Mailpit user would. It reports what the client
// returned as one JSON object on stdout; the Rust test (../mailpit_client.rs)
// holds the expectations. Also usable by hand against a running `harness up`:
//
//   node client.mjs http://127.0.0.1:8025 'to:oncall@example.com' 'subject:INC'
//
// Usage: node client.mjs <viewer-url> [search query ...]
// With --delete as the last argument, it also deletes every message and lists again.
import { MailpitClient } from 'mailpit-api';

const args = process.argv.slice(2);
const url = args.shift();
const remove = args.at(-1) === '--delete';
if (remove) args.pop();
if (!url) {
  console.error('usage: node client.mjs <viewer-url> [search query ...] [--delete]');
  process.exit(2);
}
const mailpit = new MailpitClient(url);
const brief = (page) => ({
  total: page.total,
  unread: page.unread,
  count: page.count,
  messages_count: page.messages_count,
  start: page.start,
  tags: page.tags,
  messages: page.messages.map((m) => ({
    ID: m.ID, Read: m.Read, From: m.From, To: m.To, Subject: m.Subject, Created: m.Created, Size: m.Size, Snippet: m.Snippet,
  })),
});

const report = {};
report.list = brief(await mailpit.listMessages());
report.second_page = brief(await mailpit.listMessages(1, 1));
const latest = await mailpit.getMessageSummary();
report.latest = {
  ID: latest.ID, MessageID: latest.MessageID, From: latest.From, To: latest.To, Subject: latest.Subject,
  Date: latest.Date, Text: latest.Text, HTML: latest.HTML, Size: latest.Size,
  Attachments: latest.Attachments, Inline: latest.Inline,
};
report.headers = await mailpit.getMessageHeaders(latest.ID);
report.source = await mailpit.getMessageSource(latest.ID);
report.list_after_read = brief(await mailpit.listMessages());
report.searches = {};
for (const query of args) {
  report.searches[query] = brief(await mailpit.searchMessages({ query }));
}
if (remove) {
  report.deleted = await mailpit.deleteMessages();
  report.list_after_delete = brief(await mailpit.listMessages());
}
process.stdout.write(`${JSON.stringify(report)}\n`);
