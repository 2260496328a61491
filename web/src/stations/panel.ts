// The Stations panel: every station with who is inside it now and for how
// long (ticking), click to fly there; for operators, drawing a circle or a
// polygon (leaflet-geoman), naming and typing it, editing its shape and
// deleting it, saved through the API with If-Match so that two
// dispatchers editing at once get a conflict (412), never a lost update.

import L from 'leaflet';
import '@geoman-io/leaflet-geoman-free';
import { Api, ApiError, stationTypes, type Station, type StationInput, type StationType } from '../api';
import { clear, duration, h } from '../dom';
import { VehicleStore } from '../vehicles/store';
import { StationsLayer, geometryOf, shapeOf, styleOf } from './layer';

interface Draft {
  layer: L.Circle | L.Polygon;
  /** the station edited, with the ETag it was read at; absent for a new one. */
  editing?: { station: Station; etag: string };
}

/** Vehicles listed inside a station, and inside the selected one. */
const maxInside = 10;
const maxInsideSelected = 200;

export class StationsPanel {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly editor: HTMLElement;
  private readonly status: HTMLElement;
  private draft: Draft | null = null;
  private readonly svg = L.svg();
  private selected: string | null = null;
  /** the station whose deletion awaits a confirmation. */
  private confirming: string | null = null;

  constructor(
    private readonly api: Api,
    private readonly map: L.Map,
    private readonly layer: StationsLayer,
    private readonly store: VehicleStore,
    private readonly operator: boolean,
    private readonly selectVehicle: (plate: string) => void,
  ) {
    this.list = h('ul', { class: 'stations-list', 'data-testid': 'stations-list', 'aria-label': 'Stations' });
    this.editor = h('div', { class: 'station-editor', 'data-testid': 'station-editor' });
    this.status = h('p', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': 'stations-status' });
    const tools = operator
      ? h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Draw a station' },
        this.button('Draw circle', 'draw-circle', () => this.startDraw('Circle')),
        this.button('Draw polygon', 'draw-polygon', () => this.startDraw('Polygon')))
      : null;
    this.el = h('section', { class: 'panel-body', 'data-testid': 'stations-panel' }, tools, this.status, this.editor, this.list);
    layer.onChange = () => this.render();
    layer.onClick = (id) => this.select(id, false);
    store.onChange(() => this.renderSoon());
    setInterval(() => this.tick(), 1000);
    if (operator) {
      map.pm.setGlobalOptions({ pathOptions: { ...styleOf('loading'), renderer: this.svg }, templineStyle: { renderer: this.svg } as L.PathOptions, hintlineStyle: { renderer: this.svg } as L.PathOptions } as L.PM.GlobalOptions);
      map.on('pm:create', (e) => this.created(e.layer as L.Circle | L.Polygon));
    }
  }

  private button(text: string, testid: string, fn: () => void, cls = ''): HTMLButtonElement {
    const b = h('button', { type: 'button', class: cls, 'data-testid': testid, text });
    b.addEventListener('click', fn);
    return b;
  }

  private say(text: string, error = false): void {
    this.status.textContent = text;
    this.status.className = error ? 'status error' : 'status';
  }

  private renderPending = false;
  private renderSoon(): void {
    if (this.renderPending) return;
    this.renderPending = true;
    // A hidden panel is not drawn; shown() draws it when it opens.
    setTimeout(() => { this.renderPending = false; if (!this.el.hidden) this.render(); }, 300);
  }

  /** shown draws the panel as it opens. */
  shown(): void { this.render(); }

  /** inside lists, per station, the plates in it now and since when. */
  private inside(): Map<string, [string, number][]> {
    const m = new Map<string, [string, number][]>();
    for (const [plate, visits] of this.store.visits) {
      for (const [station, at] of visits) {
        let l = m.get(station);
        if (!l) { l = []; m.set(station, l); }
        l.push([plate, at]);
      }
    }
    for (const l of m.values()) l.sort((a, b) => a[1] - b[1]);
    return m;
  }

  render(): void {
    const inside = this.inside();
    const stations = [...this.layer.stations.values()].sort((a, b) => a.name.localeCompare(b.name));
    const now = Date.now();
    const items = stations.map((s) => {
      const who = inside.get(s.id) ?? [];
      const head = this.button('', `station-${s.id}`, () => this.select(s.id, true), 'station-head');
      head.append(h('span', { class: `type type-${s.type}`, text: s.type }), h('span', { class: 'name', text: s.name }),
        h('span', { class: 'count', 'aria-label': `${who.length} inside`, text: String(who.length) }));
      head.setAttribute('aria-expanded', String(this.selected === s.id));
      const li = h('li', { class: `station${this.selected === s.id ? ' selected' : ''}${s.type === 'hazard' ? ' hazard' : ''}`, 'data-station': s.id }, head);
      if (who.length) {
        // The longest stays first; a busy depot lists a few unless it is
        // the selected station (a list of thousands helps nobody and
        // costs the page its frame budget).
        const shown = who.slice(0, this.selected === s.id ? maxInsideSelected : maxInside);
        const more = who.length - shown.length;
        li.append(h('ul', { class: 'inside', 'data-testid': `inside-${s.id}` }, ...shown.map(([plate, at]) => {
          const b = this.button('', `inside-${s.id}-${plate}`, () => this.selectVehicle(plate), 'link');
          b.append(h('span', { text: plate }), ' since ', h('span', { class: 'since', 'data-since': at, text: duration((now - at) / 1000) }));
          return h('li', {}, b);
        }), more > 0 ? h('li', { class: 'more', text: `and ${more} more` }) : null));
      }
      if (this.selected === s.id && this.operator && !this.draft) {
        // The confirmation is part of the panel's state, so that the
        // redraws the moving fleet causes keep it open.
        li.append(this.confirming === s.id ? this.confirmBox(s) : h('div', { class: 'row' },
          this.button('Edit', 'station-edit', () => void this.startEdit(s.id)),
          this.button('Delete…', 'station-delete', () => this.confirmDelete(s.id), 'danger')));
      }
      return li;
    });
    clear(this.list, ...items);
    if (!stations.length) this.list.append(h('li', { class: 'empty', text: 'No stations.' }));
  }

  private tick(): void {
    if (this.el.hidden) return;
    const now = Date.now();
    for (const e of this.list.querySelectorAll<HTMLElement>('[data-since]')) {
      e.textContent = duration((now - Number(e.dataset.since)) / 1000);
    }
  }

  select(id: string, fly: boolean): void {
    if (id !== this.selected) this.confirming = null;
    this.selected = id;
    if (fly) this.layer.flyTo(id);
    this.render();
    this.list.querySelector<HTMLElement>(`[data-station="${CSS.escape(id)}"] .station-head`)?.scrollIntoView({ block: 'nearest' });
  }

  // --- editing (operators) ---

  private startDraw(shape: 'Circle' | 'Polygon'): void {
    this.cancelDraft();
    this.say(shape === 'Circle' ? 'Click the centre, then click again at the radius. Escape cancels.' : 'Click each corner; click the first one to finish. Escape cancels.');
    this.map.pm.enableDraw(shape, { continueDrawing: false, finishOn: null } as L.PM.DrawModeOptions);
  }

  private created(layer: L.Circle | L.Polygon): void {
    this.map.pm.disableDraw();
    this.draft = { layer };
    layer.pm.enable({ draggable: true } as L.PM.EditModeOptions);
    this.showForm();
    this.say('Name the station and save it. You can still move its edges.');
  }

  private async startEdit(id: string): Promise<void> {
    this.cancelDraft();
    let got: { station: Station; etag: string };
    try { got = await this.api.station(id); } catch (e) { this.say(`Could not load the station: ${(e as Error).message}`, true); return; }
    const layer = shapeOf(got.station, { ...styleOf(got.station.type), renderer: this.svg });
    layer.addTo(this.map);
    this.layer.hide(id, true);
    layer.pm.enable({ draggable: true } as L.PM.EditModeOptions);
    this.draft = { layer, editing: got };
    this.showForm();
    this.say('Drag the vertices or the shape, change the name or type, then save.');
  }

  private showForm(): void {
    const d = this.draft!;
    const s = d.editing?.station;
    const id = h('input', { id: 'st-id', name: 'id', pattern: '[A-Za-z0-9_.:\\-]{1,64}', 'data-testid': 'station-id', value: s?.id ?? '', placeholder: 'made by the server when empty' });
    if (s) id.readOnly = true;
    const name = h('input', { id: 'st-name', name: 'name', required: true, maxlength: 200, 'data-testid': 'station-name', value: s?.name ?? '' });
    const type = h('select', { id: 'st-type', name: 'type', 'data-testid': 'station-type' },
      ...stationTypes.map((t) => h('option', { value: t, text: t, selected: (s?.type ?? 'loading') === t })));
    const save = h('button', { type: 'submit', 'data-testid': 'station-save', text: s ? 'Save changes' : 'Save station' });
    const form = h('form', { class: 'form', 'aria-label': s ? `Edit station ${s.name}` : 'New station' },
      h('h3', { text: s ? `Edit ${s.name}` : 'New station' }),
      h('label', { for: 'st-id', text: 'Id (optional)' }), id,
      h('label', { for: 'st-name', text: 'Name' }), name,
      h('label', { for: 'st-type', text: 'Type' }), type,
      h('div', { class: 'row' }, save, this.button('Cancel', 'station-cancel', () => this.cancelDraft())));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.save({ id: id.value.trim() || undefined, name: name.value.trim(), type: type.value as StationType });
    });
    form.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') this.cancelDraft(); });
    clear(this.editor, form);
    this.render();
    name.focus();
  }

  private async save(f: { id?: string; name: string; type: StationType }): Promise<void> {
    const d = this.draft;
    if (!d || !f.name) return;
    const input: StationInput = { ...f, coord_system: 'wgs84', ...geometryOf(d.layer) };
    // A PUT replaces the definition: keep the detection settings the form does not show.
    const det = d.editing?.station.detection;
    if (det && Object.keys(det).length) input.detection = det;
    try {
      let id: string;
      if (d.editing) {
        id = d.editing.station.id;
        await this.api.replaceStation(id, { ...input, id }, d.editing.etag);
      } else {
        id = await this.api.createStation(input) || f.id || '';
      }
      this.finishDraft();
      await this.refresh(id);
      this.say(`Saved station ${f.name}.`);
      if (id) this.select(id, false);
    } catch (e) {
      if (e instanceof ApiError && e.status === 412) { this.conflict(); return; }
      this.say(`Not saved: ${(e as Error).message}`, true);
    }
  }

  private conflict(): void {
    const id = this.draft?.editing?.station.id;
    this.say('This station was changed by someone else since you opened it. Nothing was overwritten.', true);
    const reload = this.button('Reload their version', 'station-reload', async () => {
      this.cancelDraft();
      if (id) { await this.refresh(id); void this.startEdit(id); }
    });
    this.status.append(' ', reload);
    this.status.setAttribute('data-conflict', 'true');
    reload.focus();
  }

  /** confirmDelete asks whether to delete station id (confirmBox, drawn by render). */
  private confirmDelete(id: string): void {
    this.confirming = id;
    this.render();
    this.list.querySelector<HTMLElement>('.confirm button')?.focus();
  }

  private confirmBox(s: Station): HTMLElement {
    const id = s.id;
    return h('div', { class: 'confirm', role: 'alertdialog', 'aria-label': `Delete ${s.name}?` },
      h('span', { text: `Delete ${s.name}? Vehicles inside will leave it at their next fix.` }),
      this.button('Delete', 'station-delete-confirm', async () => {
        this.confirming = null;
        try {
          const { etag } = await this.api.station(id);
          await this.api.deleteStation(id, etag);
          this.layer.remove(id);
          this.say(`Deleted ${s.name}.`);
        } catch (e) {
          if (e instanceof ApiError && e.status === 412) this.say('This station was changed by someone else: reload and try again.', true);
          else this.say(`Not deleted: ${(e as Error).message}`, true);
        }
      }, 'danger'),
      this.button('Keep it', 'station-delete-cancel', () => { this.confirming = null; this.render(); }));
  }

  private finishDraft(): void {
    const d = this.draft;
    this.draft = null;
    if (d) { d.layer.pm.disable(); d.layer.remove(); if (d.editing) this.layer.hide(d.editing.station.id, false); }
    this.status.removeAttribute('data-conflict');
    clear(this.editor);
  }

  cancelDraft(): void {
    this.map.pm.disableDraw();
    const had = !!this.draft;
    this.finishDraft();
    if (had) { this.say(''); this.render(); }
  }

  /** refresh reads one station again (after a save, or a live station event). */
  async refresh(id: string): Promise<void> {
    try {
      const { station } = await this.api.station(id);
      if (this.draft?.editing?.station.id === id) {
        this.layer.upsert(station);
        this.layer.hide(id, true);
      } else {
        this.layer.upsert(station);
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) this.layer.remove(id);
    }
  }
}
