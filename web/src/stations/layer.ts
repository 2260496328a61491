// Stations on the map as their real shapes (circles and polygons, from
// geometry, which the API gives in WGS84 whatever the station was defined
// in), on a canvas renderer. Hazard zones are red, bold and dashed; names
// show on hover, and always from labelZoom on.

import L from 'leaflet';
import type { Geometry, Station, StationInput } from '../api';

const labelZoom = 17;

export function styleOf(type: string): L.PathOptions {
  if (type === 'hazard') return { color: '#d0021b', weight: 3, dashArray: '8 5', fillColor: '#d0021b', fillOpacity: 0.25 };
  return { color: '#6a3fb5', weight: 2, fillColor: '#6a3fb5', fillOpacity: 0.1 };
}

/** shapeOf builds the Leaflet layer of a station's WGS84 geometry. */
export function shapeOf(s: Station, opts: L.PathOptions): L.Circle | L.Polygon {
  const g: Geometry = s.geometry;
  if (g.type === 'Point') return L.circle([g.coordinates[1], g.coordinates[0]], { ...opts, radius: s.radius_m ?? 10 });
  const ring = (r: [number, number][]) => r.slice(0, -1).map(([lng, lat]) => L.latLng(lat, lng));
  if (g.type === 'Polygon') return L.polygon(g.coordinates.map(ring), opts);
  return L.polygon(g.coordinates.map((p) => p.map(ring)), opts);
}

/** geometryOf is the WGS84 definition of a drawn or edited shape. */
export function geometryOf(layer: L.Layer): Pick<StationInput, 'geometry' | 'radius_m'> {
  if (layer instanceof L.Circle) {
    const c = layer.getLatLng();
    return { geometry: { type: 'Point', coordinates: [round(c.lng), round(c.lat)] }, radius_m: Math.max(10, Math.round(layer.getRadius())) };
  }
  if (layer instanceof L.Polygon) {
    const rings = (layer.getLatLngs() as L.LatLng[][]).map((r) => {
      const pts = r.map((p) => [round(p.lng), round(p.lat)] as [number, number]);
      return [...pts, pts[0]];
    });
    return { geometry: { type: 'Polygon', coordinates: rings } };
  }
  throw new Error('a station is a circle or a polygon');
}

const round = (v: number) => Math.round(v * 1e7) / 1e7;

export class StationsLayer {
  readonly stations = new Map<string, Station>();
  private readonly shapes = new Map<string, L.Circle | L.Polygon>();
  private readonly renderer = L.canvas({ padding: 0.2 });
  private readonly group = L.layerGroup();
  onClick: (id: string) => void = () => {};
  onChange: () => void = () => {};

  constructor(private readonly map: L.Map) {
    this.group.addTo(map);
    map.on('zoomend', () => this.labels());
  }

  set(list: Station[]): void {
    for (const id of [...this.stations.keys()]) this.remove(id, false);
    for (const s of list) this.upsert(s, false);
    this.onChange();
  }

  upsert(s: Station, notify = true): void {
    this.remove(s.id, false);
    this.stations.set(s.id, s);
    const shape = shapeOf(s, { ...styleOf(s.type), renderer: this.renderer, bubblingMouseEvents: false });
    shape.bindTooltip(s.name, { permanent: this.map.getZoom() >= labelZoom, direction: 'center', className: 'station-label' });
    shape.on('click', () => this.onClick(s.id));
    shape.addTo(this.group);
    this.shapes.set(s.id, shape);
    if (notify) this.onChange();
  }

  remove(id: string, notify = true): void {
    this.shapes.get(id)?.remove();
    this.shapes.delete(id);
    this.stations.delete(id);
    if (notify) this.onChange();
  }

  /** hide takes a station off the map while it is edited (its editable copy is shown instead). */
  hide(id: string, hidden: boolean): void {
    const s = this.shapes.get(id);
    if (!s) return;
    if (hidden) s.remove(); else s.addTo(this.group);
  }

  bounds(id: string): L.LatLngBounds | null { return this.shapes.get(id)?.getBounds() ?? null; }

  flyTo(id: string): void {
    const b = this.bounds(id);
    if (b) this.map.flyToBounds(b, { maxZoom: 18, duration: 0.5 });
  }

  private labels(): void {
    const permanent = this.map.getZoom() >= labelZoom;
    for (const [id, shape] of this.shapes) {
      const t = shape.getTooltip();
      if (!t || t.options.permanent === permanent) continue;
      shape.unbindTooltip();
      shape.bindTooltip(this.stations.get(id)!.name, { permanent, direction: 'center', className: 'station-label' });
    }
  }
}
