// The Vehicles panel: the vehicles in view (or those a search by plate
// finds), filtered by state and station; selecting one follows it on the
// map and shows its latest fix, current stations, current job with its
// stops' progress and today's track.

import L from 'leaflet';
import { Api, type Job, type Vehicle } from '../api';
import { clear, clock, h } from '../dom';
import { VehicleStore, stateLabels, type VehicleRec, type VehicleState } from '../vehicles/store';
import { VehiclesLayer, stateColors } from '../vehicles/layer';
import type { StationsLayer } from '../stations/layer';

const maxListed = 200;

export class VehiclesPanel {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly details: HTMLElement;
  private readonly search: HTMLInputElement;
  private readonly stateSel: HTMLSelectElement;
  private readonly stationSel: HTMLSelectElement;
  private searchResults: Vehicle[] | null = null;
  private selected: string | null = null;
  private following = true;
  private track: L.Polyline | null = null;
  private job: Job | null = null;
  private info: Vehicle | null = null;

  constructor(
    private readonly api: Api,
    private readonly map: L.Map,
    private readonly store: VehicleStore,
    private readonly layer: VehiclesLayer,
    private readonly stations: StationsLayer,
    private readonly playback: (plate: string, from: Date, to: Date) => void,
  ) {
    this.search = h('input', { type: 'search', placeholder: 'Search plates', 'aria-label': 'Search vehicles by plate', 'data-testid': 'vehicle-search' });
    this.stateSel = h('select', { 'aria-label': 'Filter by state', 'data-testid': 'filter-state' },
      h('option', { value: '', text: 'All states' }),
      ...(Object.keys(stateLabels) as VehicleState[]).map((s) => h('option', { value: s, text: stateLabels[s] })));
    this.stationSel = h('select', { 'aria-label': 'Filter by station', 'data-testid': 'filter-station' }, h('option', { value: '', text: 'Any station' }));
    this.list = h('ul', { class: 'vehicle-list', 'aria-label': 'Vehicles', 'data-testid': 'vehicle-list' });
    this.details = h('div', { class: 'vehicle-details', 'data-testid': 'vehicle-details', 'aria-live': 'polite' });
    this.el = h('section', { class: 'panel-body', 'data-testid': 'vehicles-panel' },
      h('div', { class: 'filters' }, this.search, this.stateSel, this.stationSel), this.details, this.list);

    let t: ReturnType<typeof setTimeout> | undefined;
    this.search.addEventListener('input', () => { clearTimeout(t); t = setTimeout(() => void this.doSearch(), 250); });
    this.search.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { clearTimeout(t); void this.doSearch(true); }
      if (e.key === 'Escape') { this.search.value = ''; void this.doSearch(); }
    });
    const refilter = () => { this.layer.visible = this.filter(); this.layer.invalidate(); this.renderList(); };
    this.stateSel.addEventListener('change', refilter);
    this.stationSel.addEventListener('change', refilter);
    store.onChange(() => this.soon());
    map.on('moveend', () => this.soon());
    map.on('dragstart', () => { if (this.selected && this.following) { this.following = false; this.renderDetails(); } });
    layer.onSelect = (p) => this.select(p);
    setInterval(() => this.soon(), 5000); // states age into offline
  }

  /** stationsChanged refreshes the station filter's choices. */
  stationsChanged(): void {
    const cur = this.stationSel.value;
    clear(this.stationSel, h('option', { value: '', text: 'Any station' }),
      ...[...this.stations.stations.values()].sort((a, b) => a.name.localeCompare(b.name)).map((s) => h('option', { value: s.id, text: s.name, selected: s.id === cur })));
  }

  private filter(): ((v: VehicleRec) => boolean) | null {
    const st = this.stateSel.value as VehicleState | '';
    const station = this.stationSel.value;
    if (!st && !station) return null;
    return (v) => (!st || this.store.state(v) === st) && (!station || this.store.stationsOf(v.plate).has(station));
  }

  private pending = false;
  private soon(): void {
    if (this.pending) return;
    this.pending = true;
    setTimeout(() => {
      this.pending = false;
      // A hidden panel is not drawn (a list rebuilt twice a second for a
      // fleet nobody looks at costs frames); shown() draws it when it opens.
      if (!this.el.hidden) { this.renderList(); this.renderDetails(); }
      this.follow();
    }, 500);
  }

  /** shown draws the panel as it opens. */
  shown(): void { this.renderList(); this.renderDetails(); }

  private async doSearch(selectSingle = false): Promise<void> {
    const q = this.search.value.trim();
    if (!q) { this.searchResults = null; this.renderList(); return; }
    try {
      this.searchResults = await this.api.searchVehicles(q);
      for (const v of this.searchResults) this.store.fix(v.plate, v.position, false);
      this.store.flush();
    } catch (e) {
      clear(this.list, h('li', { class: 'error', text: `Search failed: ${(e as Error).message}` }));
      return;
    }
    this.renderList();
    if (selectSingle && this.searchResults.length === 1) this.select(this.searchResults[0].plate);
  }

  private renderList(): void {
    const f = this.filter();
    let recs: VehicleRec[];
    let heading: string;
    if (this.searchResults) {
      recs = this.searchResults.map((v) => this.store.byPlate.get(v.plate)).filter((v): v is VehicleRec => !!v);
      heading = `${recs.length} found`;
    } else {
      const b = this.map.getBounds();
      recs = [...this.store.byPlate.values()].filter((v) => b.contains([v.lat, v.lng]));
      heading = `${recs.length} in view`;
    }
    if (f) recs = recs.filter(f);
    recs.sort((a, b) => a.plate.localeCompare(b.plate));
    const items = recs.slice(0, maxListed).map((v) => {
      const st = this.store.state(v);
      const b = h('button', { type: 'button', class: 'vehicle-item', 'data-testid': `vehicle-${v.plate}`, 'aria-pressed': String(v.plate === this.selected) },
        h('span', { class: 'dot', style: `background:${stateColors[st]}` }),
        h('span', { class: 'plate', text: v.plate }),
        h('span', { class: 'meta', text: `${stateLabels[st]} · ${Math.round(v.speed)} km/h` }));
      b.addEventListener('click', () => this.select(v.plate));
      return h('li', {}, b);
    });
    clear(this.list, h('li', { class: 'list-head', 'data-testid': 'vehicle-count', text: recs.length > maxListed ? `${heading} (first ${maxListed})` : heading }), ...items);
  }

  async select(plate: string): Promise<void> {
    this.selected = plate;
    this.following = true;
    this.layer.selected = plate;
    this.layer.invalidate();
    this.info = null;
    this.job = null;
    this.track?.remove();
    this.track = null;
    const v = this.store.byPlate.get(plate);
    if (v) this.map.setView([v.lat, v.lng], Math.max(this.map.getZoom(), 16));
    this.renderDetails();
    this.renderList();
    const from = new Date(); from.setHours(0, 0, 0, 0);
    try {
      const [info, jobs, track] = await Promise.all([
        this.api.vehicle(plate),
        this.api.jobs(plate, 'started').catch(() => [] as Job[]),
        this.api.track(plate, from, new Date()),
      ]);
      if (this.selected !== plate) return;
      this.info = info;
      this.job = jobs[0] ?? null;
      this.store.fix(plate, info.position);
      const f = track.features[0];
      if (f && f.geometry.type === 'LineString') {
        const pts = (f.geometry.coordinates as [number, number][]).map(([lng, lat]) => L.latLng(lat, lng));
        this.track = L.polyline(pts, { color: '#0b63c5', weight: 3, opacity: 0.7, interactive: false }).addTo(this.map);
      }
    } catch (e) {
      if (this.selected === plate) this.details.append(h('p', { class: 'error', text: `Could not load ${plate}: ${(e as Error).message}` }));
      return;
    }
    this.renderDetails();
  }

  unselect(): void {
    this.selected = null;
    this.layer.selected = null;
    this.layer.invalidate();
    this.track?.remove();
    this.track = null;
    this.renderDetails();
    this.renderList();
  }

  private lastFix = 0;
  private follow(): void {
    if (!this.selected || !this.following) return;
    const v = this.store.byPlate.get(this.selected);
    if (!v || v.fixTime === this.lastFix) return;
    this.lastFix = v.fixTime;
    this.track?.addLatLng([v.lat, v.lng]);
    const inner = this.map.getBounds().pad(-0.25);
    if (!inner.contains([v.lat, v.lng])) this.map.panTo([v.lat, v.lng]);
  }

  private renderDetails(): void {
    const plate = this.selected;
    if (!plate) { clear(this.details); return; }
    const v = this.store.byPlate.get(plate);
    const close = h('button', { type: 'button', class: 'icon', 'aria-label': 'Close vehicle details', 'data-testid': 'vehicle-close', text: '×' });
    close.addEventListener('click', () => this.unselect());
    const follow = h('button', { type: 'button', 'aria-pressed': String(this.following), 'data-testid': 'vehicle-follow', text: this.following ? 'Following' : 'Follow' });
    follow.addEventListener('click', () => { this.following = !this.following; this.lastFix = 0; this.follow(); this.renderDetails(); });
    const play = h('button', { type: 'button', 'data-testid': 'vehicle-playback', text: 'Play back today' });
    play.addEventListener('click', () => { const from = new Date(); from.setHours(0, 0, 0, 0); this.playback(plate, from, new Date()); });
    const rows: [string, string][] = [];
    if (v) {
      rows.push(['State', stateLabels[this.store.state(v)]], ['Last fix', clock(v.fixTime)],
        ['Position', `${v.lat.toFixed(6)}, ${v.lng.toFixed(6)}`], ['Speed', `${v.speed.toFixed(1)} km/h`],
        ['Heading', v.course == null ? '—' : `${Math.round(v.course)}°`]);
    }
    const here = [...this.store.stationsOf(plate)].map(([id, at]) => `${this.stations.stations.get(id)?.name ?? id} (since ${clock(at)})`);
    rows.push(['Stations', here.length ? here.join(', ') : 'none']);
    const dl = h('dl', { class: 'facts' });
    for (const [k, val] of rows) dl.append(h('dt', { text: k }), h('dd', { 'data-testid': `fact-${k.toLowerCase().replace(' ', '-')}`, text: val }));
    const job = this.job
      ? h('div', { class: 'job', 'data-testid': 'vehicle-job' }, h('h4', { text: `Job ${this.job.external_ref ?? this.job.id.slice(0, 8)} (${this.job.status})` }),
        h('ol', { class: 'stops' }, ...this.job.stops.map((s) => h('li', { class: `stop ${s.status}`, text: `${s.station_name} · ${s.kind} · ${s.status}${s.arrived_at ? ` ${clock(s.arrived_at)}` : ''}` }))))
      : h('p', { class: 'muted', text: this.info ? 'No job under way.' : 'Loading…' });
    clear(this.details, h('div', { class: 'details-head' }, h('h3', { 'data-testid': 'vehicle-plate', text: plate }), close),
      dl, job, h('div', { class: 'row' }, follow, play),
      this.track ? h('p', { class: 'muted', 'data-testid': 'vehicle-track', text: `Today's track: ${this.track.getLatLngs().length} fixes` }) : null);
  }
}
