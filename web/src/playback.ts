// Playback: a vehicle's history over a range (or a trip's or a job's),
// played on its own replay WebSocket with play/pause, speed, and a
// scrubber marked with the vehicle's station entries and exits; moving
// the scrubber seeks. The replayed vehicle is a marker of its own on the
// map, with the path of the range drawn under it.

import L from 'leaflet';
import { Api, type Visit } from './api';
import { clear, clock, h, toLocalInput } from './dom';
import { T, eventTime, type CloudEvent } from './events';
import { TmsSocket, wsURL, type ConnState, type Frame } from './ws/client';

const speeds = [1, 10, 60, 300, 1000];

export class PlaybackPanel {
  readonly el: HTMLElement;
  private readonly plate: HTMLInputElement;
  private readonly mode: HTMLSelectElement;
  private readonly pick: HTMLSelectElement;
  private readonly from: HTMLInputElement;
  private readonly to: HTMLInputElement;
  private readonly speed: HTMLSelectElement;
  private readonly playBtn: HTMLButtonElement;
  private readonly scrub: HTMLInputElement;
  private readonly marks: HTMLElement;
  private readonly at: HTMLElement;
  private readonly status: HTMLElement;
  private sock: TmsSocket | null = null;
  private id = '';
  private n = 0;
  private state: 'idle' | 'starting' | 'playing' | 'paused' | 'ended' = 'idle';
  private window: [number, number] = [0, 0];
  private marker: L.CircleMarker | null = null;
  private path: L.Polyline | null = null;
  private dragging = false;

  constructor(private readonly api: Api, private readonly map: L.Map, private readonly token: string, private readonly wsState: (s: ConnState) => void) {
    this.plate = h('input', { id: 'pb-plate', 'data-testid': 'playback-plate', placeholder: '沪A12345', list: 'plates' });
    this.mode = h('select', { id: 'pb-mode', 'data-testid': 'playback-mode' },
      h('option', { value: 'range', text: 'Time range' }), h('option', { value: 'trip', text: 'A trip of today' }), h('option', { value: 'job', text: 'A job' }));
    this.pick = h('select', { id: 'pb-pick', 'data-testid': 'playback-pick', 'aria-label': 'Trip or job', hidden: true });
    const now = new Date();
    this.from = h('input', { id: 'pb-from', type: 'datetime-local', step: 1, 'data-testid': 'playback-from', value: toLocalInput(new Date(now.getTime() - 30 * 60_000)) });
    this.to = h('input', { id: 'pb-to', type: 'datetime-local', step: 1, 'data-testid': 'playback-to', value: toLocalInput(now) });
    this.speed = h('select', { id: 'pb-speed', 'data-testid': 'playback-speed' }, ...speeds.map((s) => h('option', { value: s, text: `${s}×`, selected: s === 60 })));
    this.playBtn = h('button', { type: 'button', 'data-testid': 'playback-play', text: 'Play' });
    this.scrub = h('input', { type: 'range', min: 0, max: 1000, value: 0, step: 1, 'aria-label': 'Playback position', 'data-testid': 'playback-scrubber', disabled: true });
    this.marks = h('div', { class: 'marks', 'aria-hidden': 'true', 'data-testid': 'playback-marks' });
    this.at = h('p', { class: 'pb-at', 'data-testid': 'playback-at', 'aria-live': 'off', text: '—' });
    this.status = h('p', { class: 'status', role: 'status', 'data-testid': 'playback-status', text: 'Pick a vehicle and a range, then Play.' });
    const start = h('button', { type: 'submit', 'data-testid': 'playback-start', text: 'Load' });
    const form = h('form', { class: 'form', 'aria-label': 'Playback' },
      h('label', { for: 'pb-plate', text: 'Vehicle' }), this.plate,
      h('label', { for: 'pb-mode', text: 'What' }), this.mode, this.pick,
      h('div', { class: 'range' }, h('label', { for: 'pb-from', text: 'From' }), this.from, h('label', { for: 'pb-to', text: 'To' }), this.to),
      h('label', { for: 'pb-speed', text: 'Speed' }), this.speed, start);
    this.el = h('section', { class: 'panel-body', 'data-testid': 'playback-panel' }, form,
      h('div', { class: 'scrubber' }, this.scrub, this.marks), h('div', { class: 'row' }, this.playBtn), this.at, this.status);

    form.addEventListener('submit', (e) => { e.preventDefault(); void this.load(); });
    this.mode.addEventListener('change', () => void this.loadChoices());
    this.plate.addEventListener('change', () => void this.loadChoices());
    this.playBtn.addEventListener('click', () => this.toggle());
    this.speed.addEventListener('change', () => {
      if (this.state === 'playing' || this.state === 'paused') this.sock?.send({ speed: { id: this.id, speed: Number(this.speed.value) } });
    });
    this.scrub.addEventListener('input', () => { this.dragging = true; this.showAt(this.scrubTime()); });
    this.scrub.addEventListener('change', () => { this.dragging = false; this.seek(this.scrubTime()); });
  }

  /** open fills the form and starts playing (from the feed's "play from here" and a vehicle's details). */
  open(plate: string, from: Date, to: Date): void {
    this.plate.value = plate;
    this.mode.value = 'range';
    this.pick.hidden = true;
    this.from.value = toLocalInput(from);
    this.to.value = toLocalInput(to);
    void this.load();
  }

  private async loadChoices(): Promise<void> {
    const plate = this.plate.value.trim();
    const mode = this.mode.value;
    this.pick.hidden = mode === 'range';
    if (mode === 'range' || !plate) return;
    const from = new Date(); from.setHours(0, 0, 0, 0);
    try {
      if (mode === 'trip') {
        const trips = await this.api.trips(plate, from, new Date());
        clear(this.pick, ...trips.map((t) => h('option', { value: t.id, text: `${clock(t.start.time ?? t.start.at ?? '')} – ${t.open ? 'now' : clock(t.end.time ?? t.end.at ?? '')} · ${(t.distance_m / 1000).toFixed(1)} km` })));
      } else {
        const jobs = [...await this.api.jobs(plate, 'started'), ...await this.api.jobs(plate, 'completed')];
        clear(this.pick, ...jobs.map((j) => h('option', { value: j.id, text: `${j.external_ref ?? j.id.slice(0, 8)} (${j.status})` })));
      }
      if (!this.pick.options.length) this.pick.append(h('option', { value: '', text: `no ${mode}s today` }));
    } catch (e) {
      this.say(`Could not list: ${(e as Error).message}`, true);
    }
  }

  private say(t: string, error = false): void {
    this.status.textContent = t;
    this.status.className = error ? 'status error' : 'status';
  }

  private socket(): TmsSocket {
    if (!this.sock) {
      this.sock = new TmsSocket({ url: wsURL('/api/v1/ws'), token: this.token, onFrame: (f) => this.frame(f), onState: (s) => this.wsState(s) });
      this.sock.start();
    }
    return this.sock;
  }

  private async load(): Promise<void> {
    const plate = this.plate.value.trim();
    if (!plate) { this.say('Enter a vehicle plate.', true); this.plate.focus(); return; }
    const mode = this.mode.value;
    this.stop();
    const msg: Record<string, unknown> = { speed: Number(this.speed.value) };
    if (mode === 'range') {
      const from = new Date(this.from.value), to = new Date(this.to.value);
      if (!(from < to)) { this.say('The range must end after it starts.', true); return; }
      Object.assign(msg, { vehicle: plate, from: from.toISOString(), to: to.toISOString() });
      this.window = [from.getTime(), to.getTime()];
      void this.drawContext(plate, from, to);
    } else {
      if (!this.pick.value) { this.say(`Pick a ${mode}.`, true); return; }
      msg[mode] = this.pick.value;
    }
    this.id = `pb${++this.n}`;
    msg.id = this.id;
    this.state = 'starting';
    this.say('Starting…');
    this.pending = msg;
    const s = this.socket();
    if (!s.send({ replay: msg })) this.waitOpen(s);
  }

  private pending: Record<string, unknown> | null = null;
  private waitOpen(s: TmsSocket): void {
    const tryIt = () => {
      if (!this.pending || this.state !== 'starting') return;
      if (s.send({ replay: this.pending })) return;
      setTimeout(tryIt, 200);
    };
    setTimeout(tryIt, 200);
  }

  private async drawContext(plate: string, from: Date, to: Date): Promise<void> {
    this.path?.remove();
    try {
      const [track, visits] = await Promise.all([this.api.track(plate, from, to), this.api.visits(plate, from, to).catch(() => [] as Visit[])]);
      const f = track.features[0];
      if (f && f.geometry.type === 'LineString') {
        const pts = (f.geometry.coordinates as [number, number][]).map(([lng, lat]) => L.latLng(lat, lng));
        this.path = L.polyline(pts, { color: '#555', weight: 3, dashArray: '4 4', opacity: 0.8, interactive: false }).addTo(this.map);
        this.map.fitBounds(this.path.getBounds(), { maxZoom: 17, padding: [30, 30] });
      }
      this.drawMarks(visits.flatMap((v) => [
        { t: Date.parse(v.entered_at), label: `entered ${v.station_id}`, kind: 'in' },
        ...(v.exited_at ? [{ t: Date.parse(v.exited_at), label: `left ${v.station_id}`, kind: 'out' }] : []),
      ]));
    } catch (e) {
      this.say(`Could not load the track: ${(e as Error).message}`, true);
    }
  }

  private drawMarks(marks: { t: number; label: string; kind: string }[]): void {
    const [a, b] = this.window;
    clear(this.marks, ...marks.filter((m) => m.t >= a && m.t <= b).map((m) =>
      h('span', { class: `mark ${m.kind}`, title: `${clock(m.t)} ${m.label}`, style: `left:${((m.t - a) / (b - a)) * 100}%` })));
  }

  private scrubTime(): number {
    const [a, b] = this.window;
    return a + ((b - a) * Number(this.scrub.value)) / 1000;
  }

  private setScrub(t: number): void {
    const [a, b] = this.window;
    if (b > a && !this.dragging) this.scrub.value = String(Math.round(((t - a) / (b - a)) * 1000));
  }

  private showAt(t: number, pos?: L.LatLng): void {
    this.at.textContent = `${clock(t)}${pos ? ` · ${pos.lat.toFixed(6)}, ${pos.lng.toFixed(6)}` : ''}`;
    this.at.dataset.time = new Date(t).toISOString();
    if (pos) { this.at.dataset.lat = String(pos.lat); this.at.dataset.lng = String(pos.lng); }
  }

  private toggle(): void {
    if (this.state === 'playing') this.sock?.send({ pause: this.id });
    else if (this.state === 'paused') this.sock?.send({ resume: this.id });
    else if (this.state === 'ended' || this.state === 'idle') void this.load();
  }

  private seek(t: number): void {
    if (this.state === 'playing' || this.state === 'paused') {
      this.sock?.send({ seek: { id: this.id, to: new Date(t).toISOString() } });
    } else if (this.mode.value === 'range' && this.window[1] > t) {
      this.from.value = toLocalInput(new Date(t));
      void this.load();
    }
  }

  private stop(): void {
    if (this.state === 'playing' || this.state === 'paused' || this.state === 'starting') this.sock?.send({ stop: this.id });
    this.state = 'idle';
  }

  private setState(s: 'playing' | 'paused' | 'ended'): void {
    this.state = s;
    this.playBtn.textContent = s === 'playing' ? 'Pause' : s === 'paused' ? 'Resume' : 'Play again';
    this.playBtn.dataset.state = s;
    this.el.dataset.state = s;
    this.scrub.disabled = false;
    this.say(s === 'playing' ? `Playing at ${this.speed.value}×` : s === 'paused' ? 'Paused' : 'Ended');
  }

  private frame(f: Frame): void {
    if (f.replay_id !== this.id) return;
    switch (f.type) {
      case 'replay_started': {
        this.pending = null;
        const a = Date.parse(f.from as string), b = Date.parse(f.to as string);
        if (a && b && (this.window[0] !== a || this.window[1] !== b)) {
          this.window = [a, b];
          if (this.mode.value !== 'range') void this.drawContext(String(f.vehicle ?? this.plate.value), new Date(a), new Date(b));
        }
        this.setState('playing');
        break;
      }
      case 'replay': {
        const e = f.event as CloudEvent;
        const d = e.data;
        const t = eventTime(e);
        if (e.type === T.position && typeof d.lat === 'number' && typeof d.lng === 'number') {
          const p = L.latLng(d.lat, d.lng);
          if (!this.marker) {
            // Above the vehicles' canvas (z-index 450), so the replayed vehicle is never hidden.
            if (!this.map.getPane('replay')) this.map.createPane('replay').style.zIndex = '460';
            this.marker = L.circleMarker(p, { radius: 9, color: '#000', weight: 3, fillColor: '#ffcc00', fillOpacity: 1, interactive: false, pane: 'replay', renderer: L.svg({ pane: 'replay' }) }).addTo(this.map);
          }
          else this.marker.setLatLng(p);
          if (!this.map.getBounds().pad(-0.1).contains(p)) this.map.panTo(p);
          this.showAt(t, p);
        } else if (e.type === T.entered || e.type === T.exited || e.type === T.alert) {
          this.say(`${clock(t)} ${e.type === T.exited ? 'left' : 'entered'} ${d.station_id}`);
        }
        this.setScrub(t);
        break;
      }
      case 'replay_state':
        this.setState(f.state === 'paused' ? 'paused' : 'playing');
        if (f.at) this.setScrub(Date.parse(f.at as string));
        break;
      case 'replay_ended':
        this.setState('ended');
        if (f.reason === 'failed') this.say(`The replay failed: ${String(f.detail ?? '')}`, true);
        break;
      case 'error':
        this.pending = null;
        this.state = 'idle';
        this.say(`Refused: ${String(f.detail ?? '')}`, true);
        break;
    }
  }
}
