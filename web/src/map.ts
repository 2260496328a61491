// The Leaflet map: the tile layer the session names (with its
// attribution), or none: with no tile URL, or tiles that fail to load,
// the map is a plain background with the stations and vehicles on it.

import L from 'leaflet';
import type { Session } from './api';

/** Where the map opens before it knows the fleet: the whole world. */
const world: L.LatLngExpression = [20, 0];

export function createMap(el: HTMLElement, session: Session): L.Map {
  const map = L.map(el, { center: world, zoom: 2, preferCanvas: true, zoomControl: true, keyboard: true, worldCopyJump: true });
  const { tile_url, tile_attribution } = session.dashboard;
  if (tile_url) {
    L.tileLayer(tile_url, { attribution: tile_attribution, maxZoom: 19, crossOrigin: true }).addTo(map);
  } else {
    map.attributionControl.addAttribution('no map tiles configured');
  }
  L.control.scale({ imperial: false }).addTo(map);
  return map;
}

export function bboxOf(map: L.Map): [number, number, number, number] {
  const b = map.getBounds();
  return [Math.max(-180, b.getWest()), Math.max(-90, b.getSouth()), Math.min(180, b.getEast()), Math.min(90, b.getNorth())];
}

// The view is kept per browser, so that a dispatcher who reloads the page
// finds the map where it was.
const viewKey = 'tms.view';

/** savedView is the view last kept, if any. */
export function savedView(): { center: L.LatLng; zoom: number } | null {
  try {
    const v = JSON.parse(localStorage.getItem(viewKey) ?? 'null') as { lat: number; lng: number; zoom: number } | null;
    if (v && Number.isFinite(v.lat) && Number.isFinite(v.lng) && Number.isFinite(v.zoom)) return { center: L.latLng(v.lat, v.lng), zoom: v.zoom };
  } catch { /* a broken entry is no view */ }
  return null;
}

/** keepView saves map's view whenever it settles. */
export function keepView(map: L.Map): void {
  map.on('moveend', () => {
    const c = map.getCenter();
    localStorage.setItem(viewKey, JSON.stringify({ lat: c.lat, lng: c.lng, zoom: map.getZoom() }));
  });
}
