// The REST client: every call carries the token as a bearer header (never in
// the URL), and a refused call becomes an ApiError carrying the problem
// document's detail, so that panels can show what the server said.

export type Role = 'viewer' | 'operator';

export interface Session {
  role: Role;
  dashboard: { tile_url: string; tile_attribution: string; offline_after_s: number };
}

export interface Position {
  lat: number; lng: number; speed_kmh: number; course_deg: number | null;
  fix_time: string; received_at: string; flags: string[];
}
export interface CurrentStation { station_id: string; station_type: string; visit_id: string; entered_at: string }
export interface Vehicle {
  plate: string; position: Position; first_seen: string; last_seen: string;
  positions_count: number; stations: CurrentStation[];
}

export type Geometry =
  | { type: 'Point'; coordinates: [number, number] }
  | { type: 'Polygon'; coordinates: [number, number][][] }
  | { type: 'MultiPolygon'; coordinates: [number, number][][][] };

export const stationTypes = ['loading', 'quality', 'unloading', 'oil', 'getoff', 'hazard', 'parking', 'repair', 'waypoint'] as const;
export type StationType = (typeof stationTypes)[number];

export interface Station {
  id: string; name: string; type: StationType; coord_system: string;
  geometry: Geometry; radius_m?: number; version: number; updated_at: string;
  detection?: Record<string, unknown>;
}
export interface StationInput {
  id?: string; name: string; type: StationType; coord_system: 'wgs84'; geometry: Geometry; radius_m?: number;
  detection?: Record<string, unknown>;
}
export interface Visit {
  visit_id: string; vehicle: string; station_id: string; station_type: string;
  entered_at: string; exited_at: string | null; open: boolean;
}
export interface JobStop {
  index: number; station_id: string; station_name: string; kind: string; status: 'pending' | 'arrived' | 'departed';
  arrived_at: string | null; departed_at: string | null;
}
export interface Job {
  id: string; vehicle: string; external_ref: string | null; status: string; stops: JobStop[];
  created_at: string; started_at: string | null; completed_at: string | null; cancelled_at: string | null;
}
export interface Trip { id: string; vehicle: string; open: boolean; start: { at?: string; time?: string }; end: { at?: string; time?: string }; duration_s: number; distance_m: number }
export interface TrackGeoJSON {
  type: 'FeatureCollection';
  features: { geometry: { type: 'LineString' | 'Point'; coordinates: unknown }; properties: { fix_times: string[]; next_cursor: string | null } }[];
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

export class Api {
  constructor(private readonly token: string, private readonly base = '') {}

  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    const init: RequestInit = { method, headers: { Authorization: `Bearer ${this.token}`, Accept: 'application/json', ...headers } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
    }
    const res = await fetch(this.base + path, init);
    if (!res.ok) throw await ApiError.from(res);
    return res;
  }

  async get<T>(path: string): Promise<T> {
    return (await this.request('GET', path)).json() as Promise<T>;
  }

  session(): Promise<Session> { return this.get('/api/v1/session'); }

  /** Follows next_cursor through every page (bounded by maxPages). */
  async all<T>(path: string, key: string, maxPages = 50): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < maxPages; i++) {
      const sep = path.includes('?') ? '&' : '?';
      const page: Record<string, unknown> = await this.get(path + (cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ''));
      out.push(...(page[key] as T[]));
      cursor = page.next_cursor as string | null;
      if (!cursor) break;
    }
    return out;
  }

  stations(): Promise<Station[]> { return this.all('/api/v1/stations?limit=500', 'stations'); }
  openVisits(): Promise<Visit[]> { return this.all('/api/v1/visits?open=true&limit=500', 'visits'); }
  /** recentVisits is the newest visits begun or ended since since (one page). */
  async recentVisits(since: Date): Promise<Visit[]> {
    const page = await this.get<{ visits: Visit[] }>(`/api/v1/visits?from=${since.toISOString()}&limit=200`);
    return page.visits;
  }
  /** someVehicles is a first page of the fleet, for the map's first view. */
  async someVehicles(): Promise<Vehicle[]> {
    const page = await this.get<{ vehicles: Vehicle[] }>('/api/v1/vehicles?limit=1000');
    return page.vehicles;
  }
  vehicle(plate: string): Promise<Vehicle> { return this.get(`/api/v1/vehicles/${encodeURIComponent(plate)}`); }
  async searchVehicles(text: string): Promise<Vehicle[]> {
    const page = await this.get<{ vehicles: Vehicle[] }>(`/api/v1/vehicles?limit=50&search=${encodeURIComponent(text)}`);
    return page.vehicles;
  }
  async jobs(plate: string, status: string): Promise<Job[]> {
    const page = await this.get<{ jobs: Job[] }>(`/api/v1/jobs?vehicle=${encodeURIComponent(plate)}&status=${status}&limit=20`);
    return page.jobs;
  }
  async trips(plate: string, from: Date, to: Date): Promise<Trip[]> {
    const page = await this.get<{ trips: Trip[] }>(`/api/v1/vehicles/${encodeURIComponent(plate)}/trips?from=${from.toISOString()}&to=${to.toISOString()}&limit=100`);
    return page.trips;
  }
  async visits(plate: string, from: Date, to: Date): Promise<Visit[]> {
    const page = await this.get<{ visits: Visit[] }>(`/api/v1/visits?vehicle=${encodeURIComponent(plate)}&from=${from.toISOString()}&to=${to.toISOString()}&limit=500`);
    return page.visits;
  }
  track(plate: string, from: Date, to: Date): Promise<TrackGeoJSON> {
    return this.get(`/api/v1/vehicles/${encodeURIComponent(plate)}/track?from=${from.toISOString()}&to=${to.toISOString()}&format=geojson&limit=10000`);
  }

  async station(id: string): Promise<{ station: Station; etag: string }> {
    const res = await this.request('GET', `/api/v1/stations/${encodeURIComponent(id)}`);
    return { station: (await res.json()) as Station, etag: res.headers.get('ETag') ?? '' };
  }
  async createStation(s: StationInput): Promise<string> {
    const res = await this.request('POST', '/api/v1/stations', s);
    const body = (await res.json()) as { id?: string; station_id?: string };
    return body.id ?? body.station_id ?? '';
  }
  async replaceStation(id: string, s: StationInput, etag: string): Promise<void> {
    await this.request('PUT', `/api/v1/stations/${encodeURIComponent(id)}`, s, { 'If-Match': etag });
  }
  async deleteStation(id: string, etag: string): Promise<void> {
    await this.request('DELETE', `/api/v1/stations/${encodeURIComponent(id)}`, undefined, { 'If-Match': etag });
  }
}

export namespace ApiError {
  export async function from(res: Response): Promise<ApiError> {
    let detail = res.statusText;
    try {
      const p = (await res.json()) as { title?: string; detail?: string };
      detail = p.detail || p.title || detail;
    } catch { /* not a problem document */ }
    return new ApiError(res.status, detail);
  }
}
