/**
 * The bundled page (src/console/assets.ts) is what src/console/build-assets.ts makes of the client
 * sources, and holds nothing from elsewhere: no CDN, no absolute URL, no inline script.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ASSETS_FILE, renderAssets } from '../../src/console/build-assets.js';
import { ASSETS } from '../../src/console/assets.js';

describe('console assets', () => {
  it('src/console/assets.ts is up to date (node --import tsx src/console/build-assets.ts)', async () => {
    assert.equal(readFileSync(ASSETS_FILE, 'utf8'), await renderAssets());
  });

  it('every asset is served from the console itself', () => {
    assert.deepEqual(Object.keys(ASSETS).sort(), ['/console.css', '/console.js', '/index.html']);
    const html = ASSETS['/index.html']?.body ?? '';
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc="\/console\.js")/, 'no inline script');
    for (const [path, a] of Object.entries(ASSETS)) {
      assert.doesNotMatch(a.body, /\b(src|href)="https?:/, `${path}: no asset from elsewhere`);
      assert.doesNotMatch(a.body, /@import|url\(\s*['"]?https?:/, `${path}: no remote CSS`);
    }
  });
});
