import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium (CI installs it); the tests never download a browser. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`console tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  });
}

export const LAPTOP = { width: 1366, height: 900 };
export const PHONE = { width: 390, height: 844 };

/**
 * Everything the page itself complained about: CSP violations, script errors, failed loads. A console
 * that needed an inline script or style, or an outside origin, shows up here.
 */
export function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/the server responded with a status of (400|401|403|404|409|413)/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  page.on('requestfailed', (req) => {
    // A poll cut short by navigating away is not a problem of the page.
    if (!/ERR_ABORTED/.test(req.failure()?.errorText ?? '')) problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`);
  });
  return problems;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Runs axe-core (WCAG 2.1 A and AA rules) in the page. Injected through the debugging protocol, so the
 * console's CSP stays on for the test.
 */
export async function axeViolations(page: Page): Promise<Array<{ id: string; impact: string | null; help: string; nodes: string[] }>> {
  const loaded = await page.evaluate('typeof window.axe');
  if (loaded === 'undefined') await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: unknown, opts: unknown) => Promise<{ violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: unknown[] }> }> }> } }).axe;
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }, resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => JSON.stringify(n.target)) }));
  });
  return result;
}

// The README's pictures are refreshed with UPDATE_SCREENSHOTS=1; other runs write them to a temporary
// directory, so a test run leaves the checkout as it was.
const SHOTS = process.env.UPDATE_SCREENSHOTS ? path.resolve('docs/screenshots') : path.join(os.tmpdir(), 'intentgate-screenshots');

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false, animations: 'disabled' });
}

/** Signs in on the console's page with a credential. */
export async function signIn(page: Page, url: string, credential: string): Promise<void> {
  await page.goto(`${url}/admin`);
  await page.getByLabel('Admin credential').fill(credential);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}
