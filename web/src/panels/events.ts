// The Events panel: the live feed of station entries and exits, hazard
// alerts (prominent, with an optional sound) and job progress. Each item
// takes the map to the place, and "play from here" opens playback at its
// time.

import L from 'leaflet';
import type { Visit } from '../api';
import { clear, clock, h } from '../dom';
import { T, eventTime, type CloudEvent } from '../events';
import type { StationsLayer } from '../stations/layer';

const maxItems = 300;

export class EventsPanel {
  readonly el: HTMLElement;
  readonly banner: HTMLElement;
  private readonly list: HTMLElement;
  private readonly sound: HTMLInputElement;
  private audio: AudioContext | null = null;
  private seen = new Set<string>();

  constructor(
    private readonly map: L.Map,
    private readonly stations: StationsLayer,
    private readonly selectVehicle: (plate: string) => void,
    private readonly playback: (plate: string, from: Date, to: Date) => void,
  ) {
    this.sound = h('input', { type: 'checkbox', id: 'alert-sound', 'data-testid': 'alert-sound' });
    this.sound.addEventListener('change', () => { if (this.sound.checked) this.audio ??= new AudioContext(); });
    this.list = h('ol', { class: 'feed', 'aria-label': 'Live events', 'data-testid': 'event-feed', reversed: true });
    this.banner = h('div', { class: 'alert-banner', role: 'alert', 'data-testid': 'alert-banner', hidden: true });
    this.el = h('section', { class: 'panel-body', 'data-testid': 'events-panel' },
      h('div', { class: 'row' }, this.sound, h('label', { for: 'alert-sound', text: 'Sound on hazard alerts' })), this.list);
    clear(this.list, h('li', { class: 'empty', text: 'Waiting for events…' }));
  }

  /**
   * backfill puts the last hour's station entries and exits (from the
   * visits read model) into the feed when the page opens, so that a
   * dispatcher sees what just happened, not an empty list. They are the
   * same entries and exits the live feed brings (one item per visit and
   * kind, whichever comes first), and ring no alarm.
   */
  backfill(visits: Visit[]): void {
    for (const v of visits) {
      const data = { vehicle: v.vehicle, station_id: v.station_id, visit_id: v.visit_id };
      this.add({ id: `${v.visit_id}:in`, type: T.entered, subject: v.vehicle, time: v.entered_at, data: { ...data, fix_time: v.entered_at } }, true);
      if (v.exited_at) this.add({ id: `${v.visit_id}:out`, type: T.exited, subject: v.vehicle, time: v.exited_at, data: { ...data, fix_time: v.exited_at } }, true);
    }
  }

  add(e: CloudEvent, quiet = false): void {
    // An entry or exit is known by its visit, so that the backfill and
    // the live feed show it once.
    const key = e.data.visit_id && (e.type === T.entered || e.type === T.exited || e.type === T.alert) ? `${e.type}:${e.data.visit_id}` : e.id;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.seen.size > maxItems * 4) this.seen = new Set([...this.seen].slice(-maxItems));
    const d = e.data;
    const plate = (d.vehicle ?? e.subject ?? '') as string;
    const station = d.station_id ? (this.stations.stations.get(d.station_id)?.name ?? d.station_id) : ((d.station_name as string) ?? '');
    const when = eventTime(e);
    let text: string;
    let cls = 'ev';
    switch (e.type) {
      case T.entered: text = `${plate} entered ${station}`; cls += ' entered'; break;
      case T.exited: text = `${plate} left ${station}`; cls += ' exited'; break;
      case T.alert: text = `HAZARD: ${plate} entered ${station}`; cls += ' alert'; break;
      case T.jobStarted: text = `${plate} started job ${d.external_ref ?? ''}`; cls += ' job'; break;
      case T.jobArrived: text = `${plate} arrived at stop ${Number(d.index) + 1} (${station})`; cls += ' job'; break;
      case T.jobDeparted: text = `${plate} left stop ${Number(d.index) + 1} (${station})`; cls += ' job'; break;
      case T.jobCompleted: text = `${plate} completed job ${d.external_ref ?? ''}`; cls += ' job'; break;
      case T.jobCancelled: text = `${plate}: job ${d.external_ref ?? ''} cancelled`; cls += ' job'; break;
      case T.jobCreated: text = `Job ${d.external_ref ?? ''} created for ${plate}`; cls += ' job'; break;
      default: return;
    }
    const point = typeof d.lat === 'number' && typeof d.lng === 'number' ? L.latLng(d.lat, d.lng)
      : d.point && typeof d.point === 'object' ? L.latLng((d.point as { lat: number }).lat, (d.point as { lng: number }).lng) : null;
    const go = h('button', { type: 'button', class: 'ev-go', 'aria-label': `${text} at ${clock(when)}: show on the map` },
      h('time', { datetime: new Date(when).toISOString(), text: clock(when) }), ' ', h('span', { text }));
    go.addEventListener('click', () => {
      if (point) this.map.setView(point, Math.max(this.map.getZoom(), 17));
      if (plate) this.selectVehicle(plate);
    });
    const play = h('button', { type: 'button', class: 'ev-play', 'data-testid': 'play-from-here', text: 'Play from here' });
    play.addEventListener('click', () => this.playback(plate, new Date(when - 60_000), new Date(Math.min(Date.now(), when + 10 * 60_000))));
    const li = h('li', { class: cls, 'data-testid': 'event-item', 'data-type': e.type, 'data-vehicle': plate, 'data-station': (d.station_id as string) ?? '', 'data-when': when }, go, plate ? play : null);
    this.list.querySelector('.empty')?.remove();
    // Newest first, by when it happened: a late or backfilled item takes its place.
    let before: Element | null = this.list.firstElementChild;
    while (before && Number((before as HTMLElement).dataset.when) > when) before = before.nextElementSibling;
    this.list.insertBefore(li, before);
    while (this.list.children.length > maxItems) this.list.lastElementChild?.remove();
    if (e.type === T.alert && !quiet) this.alert(text, when);
  }

  private bannerTimer: ReturnType<typeof setTimeout> | undefined;
  private alert(text: string, when: number): void {
    clear(this.banner, h('strong', { text: '⚠ ' }), `${text} at ${clock(when)}`);
    this.banner.hidden = false;
    clearTimeout(this.bannerTimer);
    this.bannerTimer = setTimeout(() => { this.banner.hidden = true; }, 15_000);
    if (this.sound.checked && this.audio) {
      const o = this.audio.createOscillator();
      const g = this.audio.createGain();
      o.frequency.value = 880;
      g.gain.value = 0.2;
      o.connect(g).connect(this.audio.destination);
      o.start();
      o.stop(this.audio.currentTime + 0.4);
    }
  }
}

