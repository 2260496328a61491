// The live subscription's bounding box. The page subscribes to the map's
// view widened by a margin, and subscribes again only when the view leaves
// that box or the zoom changed a lot (a box subscribed at zoom 8 holds far
// more vehicles than one needs at zoom 15): small pans cost nothing, and
// the server is not asked for a new snapshot at every move.

/** [minLng, minLat, maxLng, maxLat], WGS84 degrees. */
export type BBox = [number, number, number, number];

const round = (v: number) => Math.round(v * 1e5) / 1e5;

/** widen grows view by margin times its size on every side, clamped to the world. */
export function widen(view: BBox, margin: number): BBox {
  const w = view[2] - view[0];
  const h = view[3] - view[1];
  return [
    round(Math.max(-180, view[0] - w * margin)),
    round(Math.max(-90, view[1] - h * margin)),
    round(Math.min(180, view[2] + w * margin)),
    round(Math.min(90, view[3] + h * margin)),
  ];
}

export function contains(outer: BBox, inner: BBox): boolean {
  return inner[0] >= outer[0] && inner[1] >= outer[1] && inner[2] <= outer[2] && inner[3] <= outer[3];
}

export interface Subscribed { box: BBox; zoom: number }

/** needsResubscribe says whether a view at zoom calls for a new subscription. */
export function needsResubscribe(sub: Subscribed | null, view: BBox, zoom: number, zoomStep = 2): boolean {
  if (!sub) return true;
  return !contains(sub.box, view) || Math.abs(zoom - sub.zoom) >= zoomStep;
}

/**
 * BBoxSubscriber decides when to send a new bbox, at most once per
 * minIntervalMs: a view change that comes sooner is held and checked when
 * the interval has passed (the latest view wins).
 */
export class BBoxSubscriber {
  private sub: Subscribed | null = null;
  private last = -Infinity;
  private held: { view: BBox; zoom: number } | null = null;
  private timer: unknown = null;

  constructor(
    private readonly send: (box: BBox) => void,
    private readonly opts: { margin: number; minIntervalMs: number; zoomStep: number } = { margin: 0.5, minIntervalMs: 400, zoomStep: 2 },
    private readonly now: () => number = Date.now,
    private readonly setTimer: (fn: () => void, ms: number) => unknown = (fn, ms) => setTimeout(fn, ms),
  ) {}

  get subscribed(): Subscribed | null { return this.sub; }

  /** view reports the map's current view. */
  view(view: BBox, zoom: number): void {
    if (!needsResubscribe(this.sub, view, zoom, this.opts.zoomStep)) return;
    const wait = this.last + this.opts.minIntervalMs - this.now();
    if (wait > 0) {
      this.held = { view, zoom };
      if (this.timer === null) {
        this.timer = this.setTimer(() => {
          this.timer = null;
          const h = this.held;
          this.held = null;
          if (h) this.view(h.view, h.zoom);
        }, wait);
      }
      return;
    }
    const box = widen(view, this.opts.margin);
    this.sub = { box, zoom };
    this.last = this.now();
    this.send(box);
  }
}
