// Drives Debian's Chromium, headless, through an oidc-provider development login and consent.
//
//   node browser.mjs START_URL STOP_PREFIX [LOGIN]
//
// Opens START_URL, signs in on the login page as LOGIN (default "alice", any password), presses
// Continue on the consent page, and stops at the first navigation whose URL starts with
// STOP_PREFIX. That request is let through (the client's redirect URI sees it as it would from
// a person's browser); whether it loads or not, its URL is printed to stdout as one JSON line,
//   {"url":"..."}
// and the script exits 0. Anything else ends with a message on stderr and a non-zero status.
//
// The browser is /usr/bin/chromium with a fresh, throwaway profile; no browser is downloaded.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const [startUrl, stopPrefix, login = 'alice'] = process.argv.slice(2);
if (!startUrl || !stopPrefix) {
  console.error('usage: node browser.mjs START_URL STOP_PREFIX [LOGIN]');
  process.exit(2);
}

const DEADLINE_MS = 30_000;

const profile = mkdtempSync(join(tmpdir(), 'connect-browser-'));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
  });
  const url = await runConsent(context);
  process.stdout.write(`${JSON.stringify({ url })}\n`);
} catch (error) {
  console.error(`browser.mjs: ${error?.stack ?? error}`);
  process.exitCode = 1;
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}

async function runConsent(browserContext) {
  const page = browserContext.pages()[0] ?? (await browserContext.newPage());
  page.setDefaultTimeout(DEADLINE_MS);

  // Every hop of a redirect chain is its own request, so this sees the redirect URI even when
  // it is reached through a 303 from the provider.
  const reached = new Promise((resolve) => {
    page.on('request', (request) => {
      if (request.isNavigationRequest() && request.url().startsWith(stopPrefix)) {
        resolve(request.url());
      }
    });
  });
  let stopped;
  reached.then((url) => { stopped = url; });

  const deadline = Date.now() + DEADLINE_MS;
  await page.goto(startUrl).catch(() => {});
  while (stopped === undefined) {
    if (Date.now() > deadline) {
      throw new Error(`no navigation to ${stopPrefix} within ${DEADLINE_MS} ms; at ${page.url()}`);
    }
    await page.waitForLoadState('domcontentloaded').catch(() => {});
    if (stopped !== undefined) {
      break;
    }
    if (await page.locator('input[name="login"]').count()) {
      await page.fill('input[name="login"]', login);
      await page.fill('input[name="password"]', 'any password');
      await submit(page, reached);
    } else if (await page.locator('input[name="prompt"][value="consent"]').count()) {
      await submit(page, reached);
    } else if (await page.locator('a.button').count()) {
      // The service's own connect page: continue to the provider.
      await Promise.all([
        Promise.race([page.waitForNavigation({ waitUntil: 'commit' }).catch(() => {}), reached]),
        page.click('a.button'),
      ]);
    } else {
      await Promise.race([reached, page.waitForTimeout(100)]);
    }
  }
  return stopped;
}

// Presses the form's submit button and waits for the navigation it starts (or for the stop URL,
// which may never finish loading).
async function submit(page, reached) {
  await Promise.all([
    Promise.race([page.waitForNavigation({ waitUntil: 'commit' }).catch(() => {}), reached]),
    page.click('button[type="submit"]'),
  ]);
}
