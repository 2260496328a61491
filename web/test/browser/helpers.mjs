// Helpers of the browser tests: the environment C's Go harness (go test
// ./e2e -run Dashboard) sets, one headless Debian chromium, logging in,
// screenshots and the control server (drive a vehicle, stop and start tms).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through go test ./e2e -run Dashboard (see docs/dashboard.md)`);
  return v;
}

export const url = () => env('TMS_DASH_URL').replace(/\/$/, '');

export async function launch() {
  return chromium.launch({ executablePath: env('CHROMIUM'), headless: true, args: ['--no-sandbox'] });
}

/** newPage opens a context of its own (its own sessionStorage) at 1366x768, failing on page errors. */
export async function newPage(browser, opts = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 }, ...opts });
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e));
  return page;
}

export async function login(page, token) {
  await page.goto(url() + '/');
  await page.getByTestId('login-token').fill(token);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('connection').filter({ hasText: 'Live' }).waitFor();
}

export async function screenshot(page, name) {
  const dir = process.env.TMS_DASH_SCREENSHOTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`) });
}

export async function control(path, body) {
  const res = await fetch(env('TMS_DASH_CONTROL').replace(/\/$/, '') + path, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status !== 204) throw new Error(`control ${path}: ${res.status} ${await res.text()}`);
}

export async function api(token, path, init = {}) {
  return fetch(url() + path, { ...init, headers: { Authorization: `Bearer ${token}`, ...(init.headers ?? {}) } });
}

/** drawnPoints reads where the vehicles layer drew each plate (container pixels). */
export function drawnPoints(page) {
  return page.evaluate(() => Object.fromEntries(window.__tms.plates().map((p) => [p, window.__tms.drawn(p)]).filter(([, v]) => v)));
}
