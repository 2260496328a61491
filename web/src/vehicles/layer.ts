// The vehicles layer: every vehicle on one canvas of its own, not as
// Leaflet markers (ten thousand DOM markers do not hold a 50 ms frame).
// Close in, each vehicle is an arrow by heading, colored by state, with
// its plate from labelZoom on; further out, vehicles are clustered with
// supercluster. Movement between fixes is interpolated while at most
// smoothLimit vehicles are drawn one by one; with more, they jump to each
// new fix (animating thousands of arrows every frame would cost more than
// the frame budget on a software renderer).

import L from 'leaflet';
import Supercluster from 'supercluster';
import { VehicleStore, type VehicleRec, type VehicleState } from './store';

export const stateColors: Record<VehicleState, string> = {
  moving: '#1f9d4c', parked: '#2f6fd6', station: '#b86e00', offline: '#7d838c',
};

export interface LayerOptions {
  clusterBelowZoom: number; // clusters below this zoom
  labelZoom: number;
  smoothLimit: number;
}

const defaults: LayerOptions = { clusterBelowZoom: 14, labelZoom: 16, smoothLimit: 1500 };

/**
 * How often new fixes alone redraw the layer when it is not animating:
 * four times a second. Redrawing a full-screen canvas every frame because
 * some of ten thousand vehicles moved costs a software renderer most of
 * its frame budget (it rasterises and composites the whole canvas again);
 * a fix is shown at most a quarter of a second late. Moving the map
 * redraws at once.
 */
export const dataRedrawMs = 250;

interface Drawn { plate: string; x: number; y: number }
interface DrawnCluster { id: number; x: number; y: number; r: number }

export class VehiclesLayer {
  private readonly canvas: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D;
  /** the view changed (pan, zoom, resize, selection): redraw at the next frame. */
  private dirty = true;
  /** fixes arrived: redraw within dataRedrawMs. */
  private dataDirty = false;
  private lastDraw = 0;
  private raf = 0;
  private drawn: Drawn[] = [];
  private drawnByPlate = new Map<string, Drawn>();
  private clusters: DrawnCluster[] = [];
  private index: Supercluster | null = null;
  private indexVersion = -1;
  private indexBuilt = 0;
  selected: string | null = null;
  /** plates shown; null shows all (the vehicles panel's filters). */
  visible: ((v: VehicleRec) => boolean) | null = null;
  onSelect: (plate: string) => void = () => {};
  /** how long the last frame took to draw, in ms (for the benchmark). */
  lastFrameMs = 0;
  smoothing = true;

  constructor(private readonly map: L.Map, private readonly store: VehicleStore, private readonly opts: LayerOptions = defaults) {
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'vehicles-canvas';
    this.canvas.setAttribute('aria-hidden', 'true');
    map.getContainer().appendChild(this.canvas);
    this.ctx = this.canvas.getContext('2d')!;
    const redraw = () => { this.dirty = true; };
    map.on('move zoom resize viewreset', redraw);
    map.on('resize', () => this.resize());
    map.on('click', (e: L.LeafletMouseEvent) => this.click(e.containerPoint));
    store.onChange(() => { this.dataDirty = true; });
    this.resize();
    const loop = () => { this.frame(); this.raf = requestAnimationFrame(loop); };
    this.raf = requestAnimationFrame(loop);
  }

  invalidate(): void { this.dirty = true; }

  destroy(): void { cancelAnimationFrame(this.raf); this.canvas.remove(); }

  /** drawnPoint is where plate was last drawn, in container pixels (tests and hit-testing). */
  drawnPoint(plate: string): { x: number; y: number } | null {
    const d = this.drawnByPlate.get(plate);
    return d ? { x: d.x, y: d.y } : null;
  }

  private resize(): void {
    const s = this.map.getSize();
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(s.x * dpr);
    this.canvas.height = Math.round(s.y * dpr);
    this.canvas.style.width = `${s.x}px`;
    this.canvas.style.height = `${s.y}px`;
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.dirty = true;
  }

  private frame(): void {
    const now = Date.now();
    const t0 = performance.now();
    const dataDue = this.dataDirty && t0 - this.lastDraw >= dataRedrawMs;
    if (!this.dirty && !dataDue && !this.anyAnimating(now)) return;
    this.dirty = false;
    this.dataDirty = false;
    this.lastDraw = t0;
    const size = this.map.getSize();
    this.ctx.clearRect(0, 0, size.x, size.y);
    this.drawn = [];
    this.drawnByPlate.clear();
    this.clusters = [];
    if (this.map.getZoom() < this.opts.clusterBelowZoom) this.drawClusters(now);
    else this.drawVehicles(now);
    this.lastFrameMs = performance.now() - t0;
  }

  private animatingCount = 0;
  private anyAnimating(now: number): boolean {
    if (!this.smoothing || this.animatingCount === 0) return false;
    for (const d of this.drawn) {
      const v = this.store.byPlate.get(d.plate);
      if (v && this.store.animating(v, now)) return true;
    }
    return false;
  }

  private shown(v: VehicleRec): boolean { return !this.visible || this.visible(v) || v.plate === this.selected; }

  private drawVehicles(now: number): void {
    const b = this.map.getBounds().pad(0.05);
    const inView: VehicleRec[] = [];
    for (const v of this.store.byPlate.values()) {
      if (this.shown(v) && b.contains([v.lat, v.lng])) inView.push(v);
    }
    this.smoothing = inView.length <= this.opts.smoothLimit;
    const labels = this.map.getZoom() >= this.opts.labelZoom;
    const ctx = this.ctx;
    this.animatingCount = 0;
    for (const v of inView) {
      let lat = v.lat, lng = v.lng;
      if (this.smoothing) {
        [lat, lng] = this.store.drawnAt(v, now);
        if (this.store.animating(v, now)) this.animatingCount++;
      }
      const p = this.map.latLngToContainerPoint([lat, lng]);
      const d = { plate: v.plate, x: p.x, y: p.y };
      this.drawn.push(d);
      this.drawnByPlate.set(v.plate, d);
      const state = this.store.state(v, now);
      ctx.save();
      ctx.translate(p.x, p.y);
      if (v.plate === this.selected) {
        ctx.beginPath(); ctx.arc(0, 0, 13, 0, Math.PI * 2);
        ctx.strokeStyle = '#111'; ctx.lineWidth = 3; ctx.stroke();
      }
      ctx.fillStyle = stateColors[state];
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      if (v.course == null || state === 'parked' || state === 'offline') {
        ctx.arc(0, 0, 6, 0, Math.PI * 2);
      } else {
        ctx.rotate((v.course * Math.PI) / 180);
        ctx.moveTo(0, -9); ctx.lineTo(6, 7); ctx.lineTo(0, 3); ctx.lineTo(-6, 7); ctx.closePath();
      }
      ctx.fill(); ctx.stroke();
      ctx.restore();
      if (labels) {
        ctx.font = '12px system-ui, sans-serif';
        ctx.lineWidth = 3; ctx.strokeStyle = 'rgba(255,255,255,0.9)'; ctx.fillStyle = '#111';
        ctx.strokeText(v.plate, p.x + 10, p.y + 4);
        ctx.fillText(v.plate, p.x + 10, p.y + 4);
      }
    }
  }

  private drawClusters(now: number): void {
    this.animatingCount = 0;
    // Rebuilding the index costs tens of ms for 10,000 points: at most once a second.
    if (!this.index || (this.indexVersion !== this.store.version && now - this.indexBuilt > 1000)) {
      const pts: GeoJSON.Feature<GeoJSON.Point, { plate: string }>[] = [];
      for (const v of this.store.byPlate.values()) {
        if (!this.shown(v)) continue;
        pts.push({ type: 'Feature', properties: { plate: v.plate }, geometry: { type: 'Point', coordinates: [v.lng, v.lat] } });
      }
      this.index = new Supercluster({ radius: 60, maxZoom: this.opts.clusterBelowZoom - 1 });
      this.index.load(pts);
      this.indexVersion = this.store.version;
      this.indexBuilt = now;
    } else if (this.indexVersion !== this.store.version) {
      this.dataDirty = true; // draw again once the index may be rebuilt
    }
    const b = this.map.getBounds();
    const feats = this.index.getClusters([b.getWest(), b.getSouth(), b.getEast(), b.getNorth()], Math.floor(this.map.getZoom()));
    const ctx = this.ctx;
    for (const f of feats) {
      const [lng, lat] = f.geometry.coordinates;
      const p = this.map.latLngToContainerPoint([lat, lng]);
      const props = f.properties as { cluster?: boolean; point_count?: number; cluster_id?: number; plate?: string };
      if (props.cluster) {
        const n = props.point_count ?? 0;
        const r = 10 + Math.min(14, Math.log2(n) * 2);
        ctx.beginPath(); ctx.arc(p.x, p.y, r, 0, Math.PI * 2);
        ctx.fillStyle = 'rgba(31,95,170,0.8)'; ctx.fill();
        ctx.strokeStyle = '#fff'; ctx.lineWidth = 2; ctx.stroke();
        ctx.fillStyle = '#fff'; ctx.font = 'bold 12px system-ui, sans-serif'; ctx.textAlign = 'center';
        ctx.fillText(String(n), p.x, p.y + 4);
        ctx.textAlign = 'start';
        this.clusters.push({ id: props.cluster_id!, x: p.x, y: p.y, r });
      } else if (props.plate) {
        const v = this.store.byPlate.get(props.plate);
        if (!v) continue;
        const d = { plate: v.plate, x: p.x, y: p.y };
        this.drawn.push(d); this.drawnByPlate.set(v.plate, d);
        ctx.beginPath(); ctx.arc(p.x, p.y, v.plate === this.selected ? 8 : 5, 0, Math.PI * 2);
        ctx.fillStyle = stateColors[this.store.state(v, now)]; ctx.fill();
        ctx.strokeStyle = v.plate === this.selected ? '#111' : '#fff'; ctx.lineWidth = 1.5; ctx.stroke();
      }
    }
  }

  private click(pt: L.Point): void {
    for (const c of this.clusters) {
      if ((c.x - pt.x) ** 2 + (c.y - pt.y) ** 2 <= c.r * c.r && this.index) {
        const z = Math.min(this.index.getClusterExpansionZoom(c.id), this.opts.clusterBelowZoom);
        this.map.setView(this.map.containerPointToLatLng([c.x, c.y]), z);
        return;
      }
    }
    let best: Drawn | null = null;
    let bestD = 14 * 14;
    for (const d of this.drawn) {
      const dd = (d.x - pt.x) ** 2 + (d.y - pt.y) ** 2;
      if (dd < bestD) { best = d; bestD = dd; }
    }
    if (best) this.onSelect(best.plate);
  }
}
