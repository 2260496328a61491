// The page once logged in: header (connection, role, logout), the map,
// and the panels in tabs. Two live sockets: "live" follows the map's
// bounding box (the positions of what is in view; in a worker),
// "feed" takes the fleet-wide events the feed and the stations panel need
// whatever the map shows. Playback opens a third, for replays.

import L from 'leaflet';
import { Api, type Session, type Station } from './api';
import { h } from './dom';
import { Bus, T, jobTypes, type CloudEvent } from './events';
import { bboxOf, createMap, keepView, savedView } from './map';
import { EventsPanel } from './panels/events';
import { VehiclesPanel } from './panels/vehicles';
import { PlaybackPanel } from './playback';
import { StationsLayer } from './stations/layer';
import { StationsPanel } from './stations/panel';
import { VehiclesLayer } from './vehicles/layer';
import { VehicleStore, type Fix } from './vehicles/store';
import { BBoxSubscriber } from './ws/bbox';
import { TmsSocket, wsURL, type ConnState } from './ws/client';

declare global {
  interface Window { __tms?: { drawn(plate: string): { x: number; y: number } | null; plates(): string[]; version(): number; frameMs(): number } }
}

/** How often the live worker hands its gathered fixes to the page. */
const liveEveryMs = 200;

export function startApp(root: HTMLElement, token: string, session: Session, logout: (msg?: string) => void): void {
  const api = new Api(token);
  const operator = session.role === 'operator';
  const conn = h('div', { class: 'conn', role: 'status', 'aria-live': 'polite', 'data-testid': 'connection' });
  const logoutBtn = h('button', { type: 'button', 'data-testid': 'logout', text: 'Log out' });
  logoutBtn.addEventListener('click', () => logout());
  const header = h('header', { class: 'top' },
    h('h1', { text: 'tms' }), conn,
    h('span', { class: `role role-${session.role}`, 'data-testid': 'role', text: operator ? 'operator' : 'viewer' }),
    operator ? null : h('span', { class: 'badge readonly', 'data-testid': 'read-only', text: 'read-only' }),
    logoutBtn);
  const mapEl = h('div', { class: 'map', 'data-testid': 'map', role: 'application', 'aria-label': 'Map of vehicles and stations' });
  const tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Panels' });
  const panels = h('div', { class: 'panels' });
  const side = h('aside', { class: 'side' }, tabs, panels);
  const main = h('main', { class: 'layout' }, mapEl, side);
  root.replaceChildren(h('div', { class: `app role-${session.role}` }, header, main));

  const map = createMap(mapEl, session);
  const store = new VehicleStore(session.dashboard.offline_after_s * 1000);
  const vlayer = new VehiclesLayer(map, store);
  const slayer = new StationsLayer(map);
  window.__tms = {
    drawn: (p) => vlayer.drawnPoint(p),
    plates: () => [...store.byPlate.keys()],
    version: () => store.version,
    frameMs: () => vlayer.lastFrameMs,
  };

  // Connection state: the worst of the two live sockets.
  const states: Record<string, ConnState> = {};
  const showConn = (name: string, s: ConnState) => {
    states[name] = s;
    const all = Object.values(states);
    const refused = all.find((x) => x.kind === 'refused');
    if (refused) { logout('The service refused the token (it was revoked or changed). Log in again.'); return; }
    const rec = all.find((x) => x.kind === 'reconnecting') as { at: number } | undefined;
    conn.dataset.state = rec ? 'reconnecting' : all.every((x) => x.kind === 'connected') ? 'connected' : 'connecting';
    renderConn();
    void rec;
  };
  const renderConn = () => {
    const all = Object.values(states);
    const rec = all.find((x) => x.kind === 'reconnecting') as { at: number } | undefined;
    if (rec) conn.textContent = `Connection lost: reconnecting in ${Math.max(0, Math.ceil((rec.at - Date.now()) / 1000))} s`;
    else if (all.every((x) => x.kind === 'connected')) conn.textContent = 'Live';
    else conn.textContent = 'Connecting…';
  };
  setInterval(renderConn, 1000);
  const checkToken = async () => {
    try {
      const res = await fetch('/api/v1/session', { headers: { Authorization: `Bearer ${token}` } });
      return res.status === 401 ? 'refused' as const : res.ok ? 'ok' as const : 'unreachable' as const;
    } catch { return 'unreachable' as const; }
  };

  // --- the live socket: positions in view, in a worker (ws/live.ts) ---
  const live = new Worker(new URL('./ws/live.worker.ts', import.meta.url), { type: 'module' });
  live.onmessage = (ev: MessageEvent<{ state?: ConnState; fixes?: [string, Fix][] }>) => {
    if (ev.data.state) showConn('live', ev.data.state);
    if (ev.data.fixes) {
      for (const [plate, fix] of ev.data.fixes) store.fix(plate, fix, false);
      store.flush();
    }
  };
  live.postMessage({ start: { url: wsURL('/api/v1/ws'), token, everyMs: liveEveryMs } });
  const sub = new BBoxSubscriber((bbox) => live.postMessage({ subscribe: { bbox, types: [T.position] } }));
  // The live subscription starts once the map is where it will first
  // look (loadState), so that it does not load a snapshot of a view the
  // page is about to leave.
  const follow = () => {
    map.on('moveend zoomend', () => sub.view(bboxOf(map), map.getZoom()));
    sub.view(bboxOf(map), map.getZoom());
    keepView(map);
  };

  // --- the feed socket: fleet-wide events (no positions, so no snapshot) ---
  const feedBus = new Bus<CloudEvent>();
  let loaded = false;
  const feed = new TmsSocket({
    url: wsURL('/api/v1/ws'), token, checkToken,
    onState: (s) => showConn('feed', s),
    onOpen: () => { if (loaded) void loadState(); }, // catch up on what was missed while away
    onFrame: (f) => { if (f.type === 'event') feedBus.emit(f.event as CloudEvent); },
  });
  feed.subscribe({ types: [T.entered, T.exited, T.alert, T.stationUpserted, T.stationDeleted, ...jobTypes] });
  feed.start();

  // --- panels ---
  const playback = new PlaybackPanel(api, map, token, () => {});
  let vpanel: VehiclesPanel;
  const openPlayback = (plate: string, from: Date, to: Date) => { show('playback'); playback.open(plate, from, to); };
  const selectVehicle = (plate: string) => { show('vehicles'); void vpanel.select(plate); };
  vpanel = new VehiclesPanel(api, map, store, vlayer, slayer, openPlayback);
  const events = new EventsPanel(map, slayer, selectVehicle, openPlayback);
  const spanel = new StationsPanel(api, map, slayer, store, operator, selectVehicle);
  const onStations = slayer.onChange;
  slayer.onChange = () => { onStations(); vpanel.stationsChanged(); };
  header.after(events.banner);

  feedBus.on((e) => {
    const d = e.data;
    const plate = d.vehicle ?? e.subject ?? '';
    if (e.type === T.entered && d.station_id && d.visit_id) store.entered(plate, d.station_id, Date.parse(d.fix_time ?? e.time), d.visit_id);
    else if (e.type === T.exited && d.station_id && d.visit_id) store.exited(plate, d.station_id, d.visit_id);
    else if (e.type === T.stationUpserted && e.subject) void spanel.refresh(e.subject);
    else if (e.type === T.stationDeleted && e.subject) slayer.remove(e.subject);
    events.add(e);
  });

  const tabDefs = [
    { id: 'vehicles', label: 'Vehicles', el: vpanel.el, shown: () => vpanel.shown() },
    { id: 'events', label: 'Events', el: events.el, shown: () => {} },
    { id: 'stations', label: 'Stations', el: spanel.el, shown: () => spanel.shown() },
    { id: 'playback', label: 'Playback', el: playback.el, shown: () => {} },
  ];
  const buttons: HTMLButtonElement[] = [];
  function show(id: string): void {
    for (const [i, t] of tabDefs.entries()) {
      const on = t.id === id;
      buttons[i].setAttribute('aria-selected', String(on));
      buttons[i].tabIndex = on ? 0 : -1;
      const opening = on && t.el.hidden;
      t.el.hidden = !on;
      if (opening) t.shown();
    }
  }
  for (const [i, t] of tabDefs.entries()) {
    const b = h('button', { type: 'button', role: 'tab', id: `tab-${t.id}`, 'aria-controls': `panel-${t.id}`, 'data-testid': `tab-${t.id}`, text: t.label });
    b.addEventListener('click', () => show(t.id));
    b.addEventListener('keydown', (ev) => {
      const d = ev.key === 'ArrowRight' ? 1 : ev.key === 'ArrowLeft' ? -1 : 0;
      if (!d) return;
      const n = (i + d + tabDefs.length) % tabDefs.length;
      show(tabDefs[n].id);
      buttons[n].focus();
    });
    buttons.push(b);
    tabs.append(b);
    t.el.id = `panel-${t.id}`;
    t.el.setAttribute('role', 'tabpanel');
    t.el.setAttribute('aria-labelledby', `tab-${t.id}`);
    panels.append(t.el);
  }
  show('vehicles');
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { spanel.cancelDraft(); }
  });

  async function loadState(): Promise<void> {
    try {
      const mark = store.mark();
      const [stations, visits] = await Promise.all([api.stations(), api.openVisits()]);
      slayer.set(stations);
      store.loadVisits(visits, mark);
      if (!loaded) void api.recentVisits(new Date(Date.now() - 3_600_000)).then((v) => events.backfill(v)).catch(() => {});
      if (!loaded) await firstView(stations);
    } catch (e) {
      conn.textContent = `Could not load stations: ${(e as Error).message}`;
    }
    if (!loaded) follow();
    loaded = true;
  }

  // firstView: where the dispatcher last looked, else around the
  // stations, else around the vehicles, else the world.
  async function firstView(stations: Station[]): Promise<void> {
    const kept = savedView();
    if (kept) { map.setView(kept.center, kept.zoom, { animate: false }); return; }
    let b = stations.map((s) => slayer.bounds(s.id)).filter((x): x is L.LatLngBounds => !!x)
      .reduce<L.LatLngBounds | null>((a, x) => (a ? a.extend(x) : L.latLngBounds(x.getSouthWest(), x.getNorthEast())), null);
    if (!b) {
      const vs = await api.someVehicles().catch(() => []);
      const pts = vs.filter((v) => v.position).map((v) => L.latLng(v.position!.lat, v.position!.lng));
      if (pts.length) b = L.latLngBounds(pts);
    }
    if (b) map.fitBounds(b, { maxZoom: 17, padding: [20, 20], animate: false });
  }
  void loadState();
}
