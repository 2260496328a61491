// The Leaflet map: the tile layer the session names (with its
// attribution), or none: with no tile URL, or tiles that fail to load,
// the map is a plain background with the stations and vehicles on it.

import L from 'leaflet';
import type { Session } from './api';

export const yard: L.LatLngExpression = [30.9, 121.9];

export function createMap(el: HTMLElement, session: Session): L.Map {
  const map = L.map(el, { center: yard, zoom: 16, preferCanvas: true, zoomControl: true, keyboard: true, worldCopyJump: true });
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
