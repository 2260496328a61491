// User stories against a real tms fed by `tms simulate --area yard`, in a
// real (headless Debian) chromium. One browser; a context per role.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, control, drawnPoints, env, launch, login, newPage, screenshot, url } from './helpers.mjs';

const timeout = 30_000;
let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

describe('login', () => {
  test('a refused token shows a clear message and no dashboard', { timeout }, async () => {
    const page = await newPage(browser);
    await page.goto(url() + '/');
    await page.getByTestId('login-token').fill('not-a-token');
    await page.getByTestId('login-submit').click();
    await page.getByTestId('login-message').filter({ hasText: 'refused' }).waitFor();
    assert.equal(await page.getByTestId('map').count(), 0);
    assert.ok(!page.url().includes('not-a-token'), 'the token never goes into the URL');
    await page.context().close();
  });

  test('the token is kept for the tab, not in the URL, and logout forgets it', { timeout }, async () => {
    const page = await newPage(browser);
    await login(page, env('TMS_DASH_VIEWER_TOKEN'));
    assert.ok(!page.url().includes(env('TMS_DASH_VIEWER_TOKEN')));
    await page.reload();
    await page.getByTestId('connection').filter({ hasText: 'Live' }).waitFor();
    await page.getByTestId('logout').click();
    await page.getByTestId('login-token').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('tms.token')), null);
    await page.context().close();
  });
});

describe('viewer', () => {
  test('sees the read-only badge and no edit controls', { timeout }, async () => {
    const page = await newPage(browser);
    await login(page, env('TMS_DASH_VIEWER_TOKEN'));
    await page.getByTestId('read-only').waitFor();
    await page.getByTestId('tab-stations').click();
    await page.locator('[data-testid^="station-sim.lingang-yard."]').first().click();
    assert.equal(await page.getByTestId('draw-circle').count(), 0);
    assert.equal(await page.getByTestId('draw-polygon').count(), 0);
    assert.equal(await page.getByTestId('station-edit').count(), 0);
    assert.equal(await page.getByTestId('station-delete').count(), 0);
    assert.equal(await page.locator('.leaflet-pm-toolbar').count(), 0);
    await page.context().close();
  });
});

describe('operator', () => {
  let page;
  const op = () => env('TMS_DASH_OPERATOR_TOKEN');
  const stationId = `e2e.drawn-${Date.now()}`;
  const plate = '沪Z00001';
  let centre;
  let definedAt;

  before(async () => {
    page = await newPage(browser);
    await login(page, op());
  });
  after(async () => {
    assert.deepEqual(page.errors.map((e) => e.stack ?? String(e)), []);
    await page.context().close();
  });

  test('vehicles appear and move', { timeout }, async () => {
    await page.waitForFunction(() => window.__tms.plates().filter((p) => window.__tms.drawn(p)).length >= 3);
    const first = await drawnPoints(page);
    await page.waitForFunction((first) => Object.entries(first).some(([p, a]) => {
      const b = window.__tms.drawn(p);
      return b && Math.hypot(a.x - b.x, a.y - b.y) > 2;
    }), first);
    await page.getByTestId('vehicle-list').locator('[data-testid^="vehicle-"]').first().waitFor();
    await screenshot(page, 'live-map');
  });

  test('search, select a vehicle and see its details and track', { timeout }, async () => {
    const plates = await page.evaluate(() => window.__tms.plates().filter((p) => p.startsWith('沪') === false || true));
    const target = plates.sort()[0];
    await page.getByTestId('vehicle-search').fill(target.slice(1, 4));
    await page.getByTestId(`vehicle-${target}`).click();
    await page.getByTestId('vehicle-plate').filter({ hasText: target }).waitFor();
    await page.getByTestId('fact-position').filter({ hasText: /\d+\.\d{6}, \d+\.\d{6}/ }).waitFor();
    await page.getByTestId('vehicle-track').filter({ hasText: /Today's track: \d+ fixes/ }).waitFor();
    assert.notEqual(await page.getByTestId('vehicle-job').or(page.getByText('No job under way.')).count(), 0);
    await screenshot(page, 'vehicle-selected');
    await page.getByTestId('vehicle-search').fill('');
    await page.getByTestId('vehicle-close').click();
  });

  test('draws a circle station and sees it saved', { timeout }, async () => {
    await page.getByTestId('tab-stations').click();
    await page.getByTestId('draw-circle').click();
    const box = await page.getByTestId('map').boundingBox();
    const cx = box.x + 120, cy = box.y + box.height - 120;
    await page.mouse.click(cx, cy);
    await page.mouse.click(cx + 40, cy);
    await page.getByTestId('station-name').fill('E2E drawn yard');
    await page.getByTestId('station-id').fill(stationId);
    await page.getByTestId('station-type').selectOption('unloading');
    await screenshot(page, 'stations-drawing');
    await page.getByTestId('station-save').click();
    await page.getByTestId('stations-status').filter({ hasText: 'Saved station E2E drawn yard' }).waitFor();
    await page.getByTestId(`station-${stationId}`).waitFor();
    const res = await api(op(), `/api/v1/stations/${stationId}`);
    assert.equal(res.status, 200);
    const st = await res.json();
    assert.equal(st.name, 'E2E drawn yard');
    assert.equal(st.type, 'unloading');
    const g = st.geometry;
    assert.equal(g.type, 'Point');
    assert.ok(st.radius_m >= 10);
    centre = g.coordinates;
    definedAt = Date.parse(st.updated_at);
  });

  test('a vehicle driven into it appears in the feed and the station panel', { timeout: 60_000 }, async () => {
    assert.ok(centre, 'needs the station drawn above');
    const [lng, lat] = centre;
    const points = [];
    for (let i = 4; i >= 1; i--) points.push([lng + i * 0.0008, lat]);
    for (let i = 0; i < 4; i++) points.push([lng, lat]);
    // The fixes end now, one a second: a station applies to fixes taken
    // after it was defined, so wait until the first one is.
    const span = (points.length - 1) * 1000;
    await page.waitForFunction((t) => Date.now() > t, definedAt + span + 1000, { polling: 200 });
    await control('/drive', { plate, points, interval_s: 1 });
    await page.getByTestId(`inside-${stationId}-${plate}`).waitFor();
    await page.getByTestId('tab-events').click();
    await page.locator(`[data-testid="event-item"][data-station="${stationId}"][data-vehicle="${plate}"][data-type="tms.vehicle.entered_station.v1"]`).waitFor();
    await page.getByTestId('tab-stations').click();
    await screenshot(page, 'stations-panel');
  });

  test('an edit from a stale version is refused as a conflict, not saved', { timeout }, async () => {
    await page.getByTestId(`station-${stationId}`).click();
    await page.getByTestId('station-edit').click();
    await page.getByTestId('station-name').waitFor();
    // Someone else changes it meanwhile.
    const cur = await (await api(op(), `/api/v1/stations/${stationId}`)).json();
    const g = cur.geometry;
    const put = await api(op(), `/api/v1/stations/${stationId}`, {
      method: 'PUT', headers: { 'Content-Type': 'application/json', 'If-Match': `"${cur.version}"` },
      body: JSON.stringify({ id: stationId, name: 'Renamed elsewhere', type: cur.type, coord_system: 'wgs84', geometry: g, radius_m: cur.radius_m }),
    });
    assert.ok(put.status === 200 || put.status === 202, `PUT ${put.status}`);
    await page.getByTestId('station-name').fill('My rename');
    await page.getByTestId('station-save').click();
    await page.getByTestId('stations-status').filter({ hasText: 'changed by someone else' }).waitFor();
    await page.getByTestId('station-reload').waitFor();
    const now = await (await api(op(), `/api/v1/stations/${stationId}`)).json();
    assert.equal(now.name, 'Renamed elsewhere');
    await page.getByTestId('station-reload').click();
    await page.getByTestId('station-name').waitFor();
    assert.equal(await page.getByTestId('station-name').inputValue(), 'Renamed elsewhere');
    await page.getByTestId('station-cancel').click();
  });

  test('deletes the station after a confirmation', { timeout }, async () => {
    await page.getByTestId(`station-${stationId}`).click();
    await page.getByTestId('station-delete').click();
    await page.getByTestId('station-delete-confirm').click();
    await page.getByTestId('stations-status').filter({ hasText: 'Deleted' }).waitFor();
    await page.getByTestId(`station-${stationId}`).waitFor({ state: 'detached' });
    assert.equal((await api(op(), `/api/v1/stations/${stationId}`)).status, 404);
  });

  test('playback plays, pauses and seeks', { timeout: 60_000 }, async () => {
    const target = (await page.evaluate(() => window.__tms.plates())).filter((p) => p !== plate).sort()[0];
    await page.getByTestId('tab-playback').click();
    await page.getByTestId('playback-plate').fill(target);
    const now = new Date();
    const local = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
    await page.getByTestId('playback-from').fill(local(new Date(now.getTime() - 90_000)));
    await page.getByTestId('playback-to').fill(local(now));
    await page.getByTestId('playback-speed').selectOption('10');
    await page.getByTestId('playback-start').click();
    const at = page.getByTestId('playback-at');
    await page.waitForFunction(() => document.querySelector('[data-testid="playback-at"]').dataset.lat);
    const a = await at.getAttribute('data-time');
    await page.waitForFunction((a) => document.querySelector('[data-testid="playback-at"]').dataset.time > a, a);
    await screenshot(page, 'playback');
    // Pause: once the server says paused, the marker stays where it is.
    await page.getByTestId('playback-play').click();
    await page.locator('[data-testid="playback-play"][data-state="paused"]').waitFor();
    const paused = await at.getAttribute('data-time');
    // While the live fleet moves on by a dozen fixes (two seconds of the
    // simulator's six vehicles, twenty of history at 10x), the paused
    // replay stays put.
    const v0 = await page.evaluate(() => window.__tms.version());
    await page.waitForFunction((v0) => window.__tms.version() >= v0 + 12, v0);
    assert.equal(await at.getAttribute('data-time'), paused);
    // Seek back to the start: the replay jumps back.
    await page.getByTestId('playback-scrubber').fill('0');
    await page.getByTestId('playback-play').click();
    await page.waitForFunction((p) => document.querySelector('[data-testid="playback-at"]').dataset.time < p, paused);
  });

  test('the connection drops when tms stops, and recovers by itself', { timeout: 90_000 }, async () => {
    await page.getByTestId('tab-vehicles').click();
    await control('/stop');
    await page.locator('[data-testid="connection"][data-state="reconnecting"]').filter({ hasText: 'Connection lost' }).waitFor();
    await control('/start');
    await page.locator('[data-testid="connection"][data-state="connected"]').waitFor({ timeout: 60_000 });
    const first = await drawnPoints(page);
    await page.waitForFunction((first) => Object.entries(first).some(([p, a]) => {
      const b = window.__tms.drawn(p);
      return b && Math.hypot(a.x - b.x, a.y - b.y) > 2;
    }), first, { timeout: 30_000 });
  });
});

describe('offline', () => {
  test('the page works with the tile server unreachable', { timeout }, async () => {
    const page = await newPage(browser);
    const origin = new URL(url()).origin;
    await page.context().route((u) => u.origin !== origin, (r) => r.abort());
    await login(page, env('TMS_DASH_VIEWER_TOKEN'));
    await page.waitForFunction(() => window.__tms.plates().some((p) => window.__tms.drawn(p)));
    await page.getByTestId('tab-stations').click();
    await page.locator('[data-testid^="station-sim.lingang-yard."]').first().waitFor();
    assert.deepEqual(page.errors.map((e) => e.stack ?? String(e)), []);
    await page.context().close();
  });
});
