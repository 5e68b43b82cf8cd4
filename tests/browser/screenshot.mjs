// The browser client in a call with a desktop user, for the README:
//   node tests/browser/screenshot.mjs docs/screenshots/browser.png
// (`make screenshots` runs it with the release binary in CONFAB_BIN.)

import { headless, join, launchBrowser, mediaFlows, online, openPage, startServer } from './support.mjs';

const out = process.argv[2];
if (!out) {
  console.error('usage: node tests/browser/screenshot.mjs OUT.png');
  process.exit(2);
}
const server = await startServer();
const browser = await launchBrowser();
try {
  const desk = headless(server, 'Alice', ['--answer', '--echo-chat', '--chat', 'Hi! Welcome to Confab.']);
  const page = await openPage(browser, server);
  await page.setViewportSize({ width: 1200, height: 760 });
  await join(page, 'Guest', undefined);
  await online(page, 'Guest');
  await page.getByRole('button', { name: 'Call Alice' }).click();
  await mediaFlows(page);
  const message = page.getByRole('textbox', { name: 'Message' });
  await message.fill('Hello from a browser: no app needed.');
  await message.press('Enter');
  await page.locator('#messages [aria-label="delivered"]').waitFor();
  await page.locator('#messages').getByText('echo: Hello from a browser: no app needed.').waitFor();
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
  desk.child.kill();
} finally {
  await browser.close();
  server.stop();
}
