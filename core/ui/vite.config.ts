// Builds the web UI into static files that wharf-core embeds (core/ui/embed.cmake).
// No inline script or style anywhere: the core's Content-Security-Policy forbids them.
import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

export default defineConfig({
  base: '/ui/',
  plugins: [preact({ devToolsEnabled: false, prefreshEnabled: false })],
  build: {
    target: 'es2020',
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
  },
});
