/// <reference types="vitest/config" />
import { defineConfig } from 'vite';

// The page is embedded in the tms binary (adapters/dashboard), which serves
// it at / with a strict CSP: everything is bundled, nothing inline.
//
// `npm run dev` proxies /api to a tms started by hand (TMS_DEV_API, default
// http://127.0.0.1:8080), so that the page reloads as its sources change.
const api = process.env.TMS_DEV_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/',
  build: {
    outDir: '../adapters/dashboard/static/app',
    emptyOutDir: true,
    sourcemap: true,
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
