// The dashboard's browser benchmark: one page, as a dispatcher keeps it
// open all day, looking at the whole fleet, in Debian's Chromium driven by
// playwright-core. Run by the Go benchmark BenchmarkDashboard (./bench,
// `make bench BENCH=Dashboard`), which starts tms and a simulated fleet and
// reads the JSON this prints on its last line of stdout; its progress goes
// to stderr. See docs/dashboard.md, "Tests and benchmark".
//
// What it does:
//  1. First load: a fresh browser context (empty cache) opens the page with
//     the viewer token already in the tab's session storage, as a tab a
//     dispatcher reopens; first_load_ms is from the navigation's start to
//     the first frame in which the page's vehicle count
//     ([data-testid=vehicle-count]) is above 0 (on a page without it, the
//     vehicles of its store, window.__tms.plates(); the JSON says which). (Should the page not take
//     the stored token, the login form is filled in, and the JSON says so.)
//     load_event_ms is the navigation's load event (performance.timing).
//  2. Fits the map to the fleet: zooms out with the map's zoom control
//     until the map's view contains the fleet's bounding box
//     (TMS_DASH_BENCH_BBOX). The view is read from the map's tiles (their
//     {z}/{x}/{y} and where they are drawn), so nothing of the page's
//     internals is assumed beyond a Leaflet tile layer. It then waits until
//     the page counts the whole fleet (TMS_DASH_BENCH_FLEET).
//  3. Measures for TMS_DASH_BENCH_DURATION (default 10m): the time between
//     consecutive requestAnimationFrame callbacks, collected in the page
//     and read at the end (frame_p50_ms, frame_p95_ms, ...), and every
//     10 s the page's JS heap (CDP Performance.getMetrics JSHeapUsedSize,
//     and performance.memory) and the memory of the page's renderer
//     process (see renderers): private (its own pages), PSS and RSS; the
//     figures reported are those at the end (heap_MB, private_MB, pss_MB,
//     rss_MB; MB = 2^20 bytes), with the peaks
//     beside them.
//     It also counts what reached the page over its WebSockets, to show the
//     stream the page had to keep up with.
//
// Environment: TMS_DASH_URL, TMS_DASH_VIEWER_TOKEN, CHROMIUM (as for the
// browser tests), TMS_DASH_BENCH_BBOX ("west,south,east,north", WGS84),
// TMS_DASH_BENCH_FLEET (vehicles), TMS_DASH_BENCH_DURATION (a Go-style
// duration: 10m, 90s, 1m30s).

import { chromium } from 'playwright-core';
import { readFileSync, readdirSync } from 'node:fs';

const MB = 2 ** 20;
const sampleEveryMs = 10_000;
const viewport = { width: 1920, height: 1080 }; // a dispatcher's monitor
const tokenKey = 'tms.token'; // the page's session storage key (web/src/login.ts)
const positionType = 'tms.position.reported.v1';

function env(name, fallback) {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') throw new Error(`${name} is not set (BenchmarkDashboard sets it; see docs/dashboard.md)`);
  return v;
}

/** parseDuration reads a Go-style duration (10m, 90s, 1m30s, 500ms) into ms. */
function parseDuration(s) {
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let ms = 0;
  let used = 0;
  for (const m of s.matchAll(re)) {
    ms += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2]];
    used += m[0].length;
  }
  if (used !== s.length || ms <= 0) throw new Error(`duration ${JSON.stringify(s)}: want e.g. 10m, 90s, 1m30s`);
  return ms;
}

const log = (...a) => console.error(new Date().toISOString(), ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const base = env('TMS_DASH_URL').replace(/\/$/, '');
const token = env('TMS_DASH_VIEWER_TOKEN');
const fleet = Number(env('TMS_DASH_BENCH_FLEET'));
const bbox = env('TMS_DASH_BENCH_BBOX').split(',').map(Number);
const durationMs = parseDuration(env('TMS_DASH_BENCH_DURATION', '10m'));
if (!(fleet > 0) || bbox.length !== 4 || bbox.some((v) => !Number.isFinite(v))) {
  throw new Error('TMS_DASH_BENCH_FLEET must be > 0 and TMS_DASH_BENCH_BBOX four numbers');
}

// Installed in the page before its own scripts: the rAF loop that records
// frame times (only while measuring) and the instant the vehicle count
// first shows a vehicle.
function pageProbe() {
  const b = { on: false, last: 0, deltas: [], firstVehiclesAt: null };
  window.__bench = b;
  // The map's view, from its current zoom level's tiles: where a tile
  // {z}/{x}/{y} is drawn fixes the view's position in Web Mercator pixels at
  // zoom z. null while the tiles are not settled (mid-zoom, or none).
  function mapView() {
    const map = document.querySelector('.leaflet-container');
    if (!map) return null;
    let top = null;
    for (const level of map.querySelectorAll('.leaflet-tile-container')) {
      if (!top || Number(level.style.zIndex) > Number(top.style.zIndex)) top = level;
    }
    if (!top) return null;
    const mr = map.getBoundingClientRect();
    for (const img of top.querySelectorAll('img.leaflet-tile')) {
      const m = (img.getAttribute('src') || '').match(/\/(\d+)\/(\d+)\/(\d+)\.png/);
      const r = img.getBoundingClientRect();
      if (!m || Math.abs(r.width - 256) > 0.5) continue;
      const [z, x, y] = m.slice(1).map(Number);
      const gx = x * 256 - (r.left - mr.left);
      const gy = y * 256 - (r.top - mr.top);
      const world = 256 * 2 ** z;
      const lng = (px) => (px / world) * 360 - 180;
      const lat = (py) => (Math.atan(Math.sinh(Math.PI * (1 - (2 * py) / world))) * 180) / Math.PI;
      return { z, west: lng(gx), east: lng(gx + mr.width), north: lat(gy), south: lat(gy + mr.height) };
    }
    return null;
  }
  b.view = mapView;
  // The page's vehicle count, its visible one; on a page without it, the
  // vehicles its store holds (window.__tms, the browser tests' hook).
  const count = () => {
    const el = document.querySelector('[data-testid=vehicle-count]');
    if (!el) {
      b.countSource = window.__tms ? '__tms.plates' : null;
      return window.__tms ? window.__tms.plates().length : null;
    }
    b.countSource = 'vehicle-count';
    const m = (el.textContent || '').match(/\d{1,3}(?:[,\u00a0\u202f ]\d{3})+|\d+/);
    return m ? Number(m[0].replace(/[^\d]/g, '')) : 0;
  };
  b.count = count;
  const tick = (t) => {
    if (b.firstVehiclesAt === null && (count() ?? 0) > 0) b.firstVehiclesAt = performance.now();
    if (b.on) {
      if (b.last) b.deltas.push(t - b.last);
      b.last = t;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

/**
 * renderers lists the Chromium renderer processes this process started,
 * with their resident memory (VmRSS) and CPU time, and picks the page's:
 * of those that are not Chromium's own UI (--top-chrome-webui), the one
 * that has used the most CPU (the others idle: a spare renderer Chromium
 * keeps ready for the next navigation).
 */
function renderers() {
  const children = new Map(); // ppid -> pids
  const info = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(f[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
      info.set(Number(d), { cmd: readFileSync(`/proc/${d}/cmdline`, 'utf8'), cpu_s: (Number(f[11]) + Number(f[12])) / 100 });
    } catch { /* gone meanwhile */ }
  }
  const all = [];
  const walk = (pid) => {
    for (const c of children.get(pid) ?? []) {
      const i = info.get(c);
      if (i && i.cmd.includes('--type=renderer')) {
        try {
          // smaps_rollup: Rss counts the pages of Chromium's own binary and
          // libraries that every renderer shares (about 190 MB here); Pss
          // divides shared pages among their sharers; Anonymous is the
          // process's private memory (its heaps, DOM, canvases), what
          // Chromium's task manager calls its memory footprint.
          const roll = readFileSync(`/proc/${c}/smaps_rollup`, 'utf8');
          const kB = (k) => Number(roll.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN) * 1024 / MB;
          all.push({ pid: c, rss_MB: kB('Rss'), pss_MB: kB('Pss'), private_MB: kB('Anonymous'), cpu_s: i.cpu_s, ui: i.cmd.includes('--top-chrome-webui') });
        } catch { /* gone meanwhile */ }
      }
      walk(c);
    }
  };
  walk(process.pid);
  const page = all.filter((r) => !r.ui).sort((a, b) => b.cpu_s - a.cpu_s)[0] ?? null;
  return { all, page };
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1];
}

const round = (v, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

/**
 * poll evaluates fn(arg) in the page every intervalMs until it returns a
 * truthy value, and returns that; it throws what(last value) after
 * timeoutMs. (page.evaluate runs over CDP: the page's CSP, which forbids
 * eval, does not apply, as it would to page.waitForFunction's predicates.)
 */
async function poll(page, fn, arg, { timeoutMs, intervalMs = 100, what }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await page.evaluate(fn, arg);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(what(v));
    await sleep(intervalMs);
  }
}

async function main() {
  const browser = await chromium.launch({
    executablePath: env('CHROMIUM'),
    headless: true,
    // --enable-precise-memory-info: performance.memory unrounded.
    args: ['--no-sandbox', '--enable-precise-memory-info'],
  });
  try {
    const ctx = await browser.newContext({ viewport });
    await ctx.addInitScript(([key, tok]) => { try { sessionStorage.setItem(key, tok); } catch { /* about:blank */ } }, [tokenKey, token]);
    await ctx.addInitScript(pageProbe);
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));

    // What reaches the page over its WebSockets while measuring.
    const ws = { on: false, frames: 0, bytes: 0, positions: 0 };
    page.on('websocket', (sock) => sock.on('framereceived', ({ payload }) => {
      if (!ws.on) return;
      ws.frames++;
      ws.bytes += payload.length;
      if (typeof payload !== 'string') return;
      try {
        const f = JSON.parse(payload); // one event a frame (adapters/ws)
        if (f.type === 'event' && f.event?.type === positionType) ws.positions++;
      } catch { /* not ours to judge */ }
    }));

    // 1. First load.
    log(`first load of ${base}/`);
    await page.goto(base + '/', { waitUntil: 'load' });
    const state = await poll(page, () => window.__bench.firstVehiclesAt !== null ? 'vehicles'
      : document.querySelector('[data-testid=login-token]') ? 'form' : null, null,
    { timeoutMs: 60_000, intervalMs: 20, what: () => 'no vehicle counted and no login form 60 s after the navigation' });
    const loggedInByForm = state === 'form';
    if (loggedInByForm) {
      log(`the page did not take the token from session storage (${tokenKey}): logging in with the form`);
      await page.getByTestId('login-token').fill(token);
      await page.getByTestId('login-submit').click();
      await poll(page, () => window.__bench.firstVehiclesAt !== null, null,
        { timeoutMs: 60_000, what: () => 'no vehicle counted 60 s after logging in' });
    }
    const load = await page.evaluate(() => {
      const t = performance.timing;
      return { firstVehicles: window.__bench.firstVehiclesAt, loadEvent: t.loadEventEnd - t.navigationStart };
    });
    log(`first vehicles counted ${round(load.firstVehicles)} ms after the navigation started; load event at ${load.loadEvent} ms`);

    // 2. The whole fleet in view.
    const want = { west: bbox[0], south: bbox[1], east: bbox[2], north: bbox[3] };
    const contains = (v) => v.west <= want.west && v.south <= want.south && v.east >= want.east && v.north >= want.north;
    const settledView = (notZ) => poll(page, (z) => { const v = window.__bench.view(); return v && v.z !== z ? v : null; }, notZ,
      { timeoutMs: 30_000, what: () => `the map's tiles did not settle at a zoom other than ${notZ} within 30 s` });
    let view = await settledView(-1);
    for (let i = 0; !contains(view); i++) {
      if (i === 12) throw new Error(`the map's view ${JSON.stringify(view)} does not contain the fleet ${JSON.stringify(want)} after 12 zooms out`);
      await page.locator('.leaflet-control-zoom-out').click();
      view = await settledView(view.z);
    }
    log(`map fitted to the fleet at zoom ${view.z}: ${JSON.stringify(view)}`);
    const counted = async () => page.evaluate(() => window.__bench.count());
    const fleetIn = Date.now();
    await poll(page, (n) => (window.__bench.count() ?? 0) >= n, fleet,
      { timeoutMs: 120_000, intervalMs: 500, what: () => `the page does not count the fleet's ${fleet} vehicles 2 min after the fit` });
    log(`the page counts ${await counted()} vehicles (${Date.now() - fleetIn} ms after the fit)`);

    // 3. Measure.
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Performance.enable');
    const sample = async () => {
      const { metrics } = await cdp.send('Performance.getMetrics');
      const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
      const mem = await page.evaluate(() => performance.memory ? { used: performance.memory.usedJSHeapSize, total: performance.memory.totalJSHeapSize } : null);
      const r = renderers();
      return {
        at_s: 0,
        heap_MB: round(m.JSHeapUsedSize / MB),
        heap_total_MB: round(m.JSHeapTotalSize / MB),
        performance_memory_MB: mem ? round(mem.used / MB) : null,
        rss_MB: r.page ? round(r.page.rss_MB) : null,
        pss_MB: r.page ? round(r.page.pss_MB) : null,
        private_MB: r.page ? round(r.page.private_MB) : null,
        renderers: r.all.map((x) => ({ pid: x.pid, rss_MB: round(x.rss_MB), cpu_s: x.cpu_s, ui: x.ui, page: x === r.page })),
        dom_nodes: m.Nodes,
        count: await counted(),
      };
    };
    log(`measuring for ${durationMs / 1000} s`);
    await page.evaluate(() => { window.__bench.deltas = []; window.__bench.last = 0; window.__bench.on = true; });
    ws.on = true;
    const began = Date.now();
    const samples = [];
    while (Date.now() - began < durationMs) {
      await sleep(Math.min(sampleEveryMs, durationMs - (Date.now() - began)));
      const s = await sample();
      s.at_s = round((Date.now() - began) / 1000, 0);
      samples.push(s);
      log(`${s.at_s} s: heap ${s.heap_MB} MB, the page's renderer's private ${s.private_MB} MB, PSS ${s.pss_MB} MB, RSS ${s.rss_MB} MB (renderers' RSS: ` +
        `${s.renderers.map((r) => `${r.rss_MB} MB${r.page ? ' page' : r.ui ? ' ui' : ''}`).join(', ')}), ${s.count} vehicles counted, ` +
        `${ws.positions} positions received so far`);
    }
    const deltas = await page.evaluate(() => { window.__bench.on = false; return window.__bench.deltas; });
    ws.on = false;
    const elapsed = (Date.now() - began) / 1000;
    deltas.sort((a, b) => a - b);
    const last = samples[samples.length - 1];
    const result = {
      duration_s: round(elapsed, 0),
      viewport,
      fleet,
      zoom: view.z,
      counted: last.count,
      count_source: await page.evaluate(() => window.__bench.countSource),
      logged_in_by_form: loggedInByForm,
      first_load_ms: round(load.firstVehicles),
      load_event_ms: load.loadEvent,
      frames: deltas.length,
      frame_p50_ms: round(percentile(deltas, 50)),
      frame_p95_ms: round(percentile(deltas, 95)),
      frame_p99_ms: round(percentile(deltas, 99)),
      frame_max_ms: round(deltas[deltas.length - 1] ?? NaN),
      frames_over_50ms: deltas.filter((d) => d > 50).length,
      heap_MB: last.heap_MB,
      heap_peak_MB: Math.max(...samples.map((s) => s.heap_MB)),
      rss_MB: last.rss_MB,
      rss_peak_MB: Math.max(...samples.map((s) => s.rss_MB ?? NaN)),
      pss_MB: last.pss_MB,
      pss_peak_MB: Math.max(...samples.map((s) => s.pss_MB ?? NaN)),
      private_MB: last.private_MB,
      private_peak_MB: Math.max(...samples.map((s) => s.private_MB ?? NaN)),
      performance_memory_MB: last.performance_memory_MB,
      ws_frames_per_s: round(ws.frames / elapsed),
      ws_KB_per_s: round(ws.bytes / 1024 / elapsed),
      positions_per_s: round(ws.positions / elapsed),
      page_errors: errors,
      samples,
    };
    console.log(JSON.stringify(result));
  } finally {
    await browser.close();
  }
}

await main();
