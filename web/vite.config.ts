/// <reference types="vitest/config" />
import { defineConfig, type Plugin } from 'vite';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// The page is embedded in the tms binary (adapters/dashboard), which serves
// it at / with a strict CSP: everything is bundled, nothing inline.
//
// `npm run dev` proxies /api to a tms started by hand (TMS_DEV_API, default
// http://127.0.0.1:8080). A tms without GET /api/v1/session (older builds)
// gets a stand-in for it here, reading the tokens of TMS_DEV_DATA_DIR.
const api = process.env.TMS_DEV_API ?? 'http://127.0.0.1:8080';

function devSession(): Plugin {
  const dir = process.env.TMS_DEV_DATA_DIR;
  return {
    name: 'tms-dev-session',
    apply: 'serve',
    configureServer(server) {
      if (!dir) return;
      server.middlewares.use('/api/v1/session', (req, res) => {
        const auth = req.headers.authorization ?? '';
        const token = auth.replace(/^Bearer /, '');
        const read = (role: string) => readFileSync(join(dir, 'api-tokens', role), 'utf8').trim();
        const role = token === read('operator') ? 'operator' : token === read('viewer') ? 'viewer' : null;
        res.setHeader('Content-Type', role ? 'application/json' : 'application/problem+json');
        if (!role) {
          res.statusCode = 401;
          res.end(JSON.stringify({ type: 'about:blank', title: 'Unauthorized', status: 401, detail: 'unknown token', instance: '/api/v1/session' }));
          return;
        }
        res.end(JSON.stringify({ role, dashboard: { tile_url: process.env.TMS_DEV_TILES ?? '', tile_attribution: '© OpenStreetMap contributors', offline_after_s: 600 } }));
      });
    },
  };
}

export default defineConfig({
  base: '/',
  plugins: [devSession()],
  build: {
    outDir: '../adapters/dashboard/static/app',
    emptyOutDir: true,
    assetsDir: 'assets',
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: { '/api': { target: api, ws: true, changeOrigin: false } },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
