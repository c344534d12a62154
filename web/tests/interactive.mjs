// How long the console takes to become usable for a signed-in operator: from navigation
// to the road network drawn on the map and the live events connected (issue #15's
// target: within 1 s on the shipped network). Runs N page loads in fresh contexts and
// prints each time and the median. Not a test: a measurement for docs/PERFORMANCE.md.
//
//   RW_BASE=http://127.0.0.1:8080 RW_OPERATOR=demo RW_PASSWORD=... node web/tests/interactive.mjs [N]
import { chromium } from 'playwright-core';

const base = process.env.RW_BASE;
const runs = Number(process.argv[2] || 7);
const login = await fetch(`${base}/api/login`, {
  method: 'POST',
  body: JSON.stringify({ user: process.env.RW_OPERATOR, password: process.env.RW_PASSWORD }),
});
if (login.status !== 200) throw new Error(`sign-in: ${login.status}`);
const cookie = login.headers.get('set-cookie').split(';')[0];
const [name, value] = cookie.split('=');
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const times = [];
try {
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.addCookies([{ name, value, url: base }]);
    const page = await context.newPage();
    const t0 = Date.now();
    await page.goto(`${base}/`);
    await page.waitForFunction(() =>
      document.querySelectorAll('.rw-road').length > 0 &&
      document.querySelector('[data-testid=connection]')?.dataset.state === 'live', null, { timeout: 10_000 });
    times.push(Date.now() - t0);
    await context.close();
  }
} finally {
  await browser.close();
}
const sorted = [...times].sort((a, b) => a - b);
console.log(`interactive: ${times.join(', ')} ms; median ${sorted[Math.floor(sorted.length / 2)]} ms`);
