// The console: a page and its script and style sheet, plain files from the package's `console/`
// folder (no build step), served as they are. The page needs no token to load; every call it makes
// for data sends the token its user typed, to the API routes that check it.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { RhopushError } from '../errors.js';
import { sendError } from './deps.js';

/**
 * `console/` at the package's root: two folders up from this file, whether it runs from `src/api/`
 * (tests, tsx) or `dist/api/` (a clone's build, an installed package: package.json `files` lists it).
 */
export const CONSOLE_DIR = fileURLToPath(new URL('../../console/', import.meta.url));

const FILES: Record<string, { file: string; type: string }> = {
  '/console': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/console.js': { file: 'console.js', type: 'text/javascript; charset=utf-8' },
  '/console/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
};

/** Only this origin's own files, no inline script or style, no framing. */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-cache',
};

export const consoleRoutes: FastifyPluginAsync<{ dir?: string }> = async (app, options) => {
  const dir = options.dir ?? CONSOLE_DIR;
  for (const [path, { file, type }] of Object.entries(FILES)) {
    const full = `${dir}${file}`;
    // Read once: the files are small and change only with the package.
    const body = existsSync(full) ? readFileSync(full) : undefined;
    const handler = async (_request: unknown, reply: FastifyReply) => {
      if (!body) return sendError(reply, new RhopushError('CONSOLE_MISSING', { dir: full }));
      return reply.headers(SECURITY_HEADERS).type(type).send(body);
    };
    app.get(path, { schema: { hide: true } }, handler);
    if (path === '/console') app.get('/console/', { schema: { hide: true } }, handler);
  }
};
