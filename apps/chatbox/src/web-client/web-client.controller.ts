import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Controller, Get, NotFoundException, Param, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AppConfig, InjectConfig, Public } from '@chatbox/common';

/**
 * Content-Security-Policy for every page and asset: no inline script or style, sockets to any host.
 * `frame-ancestors` is added per configuration (`frameAncestors`).
 */
export const WEB_CLIENT_CSP = [
  "default-src 'self'",
  "connect-src 'self' ws: wss: http: https:",
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  "script-src 'self'",
  "style-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

/**
 * Who may frame the pages (the embeddable widget's iframe): the sites listed in ALLOWED_ORIGINS.
 * An empty list (allowed outside production only) lets any site frame them, as it lets any origin
 * open a socket.
 */
export function frameAncestors(config: AppConfig): string {
  return config.allowedOrigins.length > 0
    ? `frame-ancestors 'self' ${config.allowedOrigins.join(' ')}`
    : 'frame-ancestors *';
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** Asset names are flat and boring: no path separators, no dot files, known extensions only. */
const ASSET_NAME = /^[a-z0-9][a-z0-9-]*\.(js|css|svg|png|ico)$/;

/** Vendored browser builds, read from node_modules at request time (exact versions in package.json). */
const VENDOR: Record<string, () => string> = {
  'marked.js': () => join(dirname(require.resolve('marked/package.json')), 'lib/marked.umd.js'),
  'purify.js': () => require.resolve('dompurify/dist/purify.min.js'),
  'highlight.js': () => require.resolve('@highlightjs/cdn-assets/highlight.min.js'),
};

/** `apps/chatbox/public`, from the sources (ts-node, Jest) or from the compiled tree in `dist/`. */
function publicRoot(): string {
  const candidates = [
    resolve(__dirname, '../../public'),
    resolve(__dirname, '../../../../../apps/chatbox/public'),
    resolve(process.cwd(), 'apps/chatbox/public'),
  ];
  return candidates.find((candidate) => existsSync(join(candidate, 'chat.html'))) ?? candidates[0];
}

/** Serves the web client (SPEC 9): three plain pages and their static assets, all public. */
@ApiExcludeController() // Pages and assets, not an API.
@Controller()
@Public()
export class WebClientController {
  private readonly root = publicRoot();
  private readonly csp: string;

  constructor(@InjectConfig() config: AppConfig) {
    this.csp = `${WEB_CLIENT_CSP}; ${frameAncestors(config)}`;
  }

  @Get()
  async sessionsRoot(@Req() req: Request, @Res() res: Response): Promise<void> {
    // `{prefix}` without the slash would resolve the pages' relative asset URLs against the parent.
    const [path, query] = req.originalUrl.split(/\?(.*)/s, 2);
    if (!path.endsWith('/')) return res.redirect(301, `${path}/${query ? `?${query}` : ''}`);
    return this.page(res, 'sessions.html');
  }

  @Get('sessions-page')
  sessionsPage(@Res() res: Response): Promise<void> {
    return this.page(res, 'sessions.html');
  }

  @Get('chat')
  chat(@Res() res: Response): Promise<void> {
    return this.page(res, 'chat.html');
  }

  @Get('admin-page')
  admin(@Res() res: Response): Promise<void> {
    return this.page(res, 'admin.html');
  }

  /** The embeddable widget, loaded by `<script src>` from other sites (README "Embedding"). */
  @Get('widget.js')
  async widget(@Res() res: Response): Promise<void> {
    res.set('Cross-Origin-Resource-Policy', 'cross-origin');
    await this.send(res, join(this.root, 'widget.js'), '.js', 'public, max-age=300');
  }

  @Get('assets/vendor/:name')
  async vendor(@Param('name') name: string, @Res() res: Response): Promise<void> {
    const locate = Object.hasOwn(VENDOR, name) ? VENDOR[name] : undefined;
    if (!locate) throw new NotFoundException(`No asset ${name}`);
    await this.send(res, locate(), '.js', 'public, max-age=3600');
  }

  @Get('assets/:name')
  async asset(@Param('name') name: string, @Res() res: Response): Promise<void> {
    const match = ASSET_NAME.exec(name);
    if (!match) throw new NotFoundException(`No asset ${name}`);
    await this.send(res, join(this.root, 'assets', name), `.${match[1]}`, 'no-cache');
  }

  private page(res: Response, file: string): Promise<void> {
    return this.send(res, join(this.root, file), '.html', 'no-store');
  }

  private async send(res: Response, path: string, extension: string, cacheControl: string): Promise<void> {
    let body: Buffer;
    try {
      body = await readFile(path);
    } catch {
      throw new NotFoundException('Not found');
    }
    res
      .status(200)
      .set({
        'Content-Type': CONTENT_TYPES[extension],
        'Content-Security-Policy': this.csp,
        'X-Content-Type-Options': 'nosniff',
        // Pages carry the token in their URL until the script moves it to sessionStorage.
        'Referrer-Policy': 'no-referrer',
        'Cache-Control': cacheControl,
      })
      .send(body);
  }
}
