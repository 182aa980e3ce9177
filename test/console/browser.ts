/**
 * Headless Chromium for the console's browser tests and benchmark: Debian's `chromium` (installed
 * by scripts/test-all.sh), driven by puppeteer-core. No browser is downloaded.
 */
import { existsSync } from 'node:fs';
import puppeteer, { type Browser } from 'puppeteer-core';

/** Where Debian puts chromium (or AEGIS_CHROMIUM). */
export function chromiumPath(): string {
  const candidates = [
    process.env['AEGIS_CHROMIUM'],
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
  ].filter((p): p is string => p !== undefined && p !== '');
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined)
    throw new Error(
      'console browser tests: no chromium found; install the Debian package (apt-get install chromium) or set AEGIS_CHROMIUM',
    );
  return found;
}

/** A headless browser (close it). */
export function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [
      // Root in a container has no user namespace for the sandbox.
      '--no-sandbox',
      '--disable-dev-shm-usage',
      '--disable-gpu',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-extensions',
    ],
    defaultViewport: { width: 1280, height: 900 },
  });
}
