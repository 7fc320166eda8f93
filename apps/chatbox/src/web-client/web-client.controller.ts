import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Controller, Get, NotFoundException, Param, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AppConfig, InjectConfig, Public } from '@chatbox/common';

/** A request's Host header when it is a plain host[:port] (anything else is left out of the CSP). */
const PLAIN_HOST = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/i;
/** Pages others may embed in an iframe (the product is embeddable); the admin page is not one. */
const EMBEDDABLE_PAGES = new Set(['chat.html', 'sessions.html']);
/** Where the page script reads the API origins it may send the user's token to. */
const API_ORIGINS_META = 'chatbox-api-origins';

/** The ws/wss origin that talks to the same host as an http/https origin. */
function socketOrigin(origin: string): string {
  return origin.replace(/^http/, 'ws');
}

/**
 * Content-Security-Policy for every page and asset: no inline script or style; network access only
 * to the page's own host and the configured API origins (WEB_CLIENT_API_ORIGINS), so a `?api=`
 * pointing elsewhere cannot carry the token away; only the chat and sessions pages may be framed.
 */
export function webClientCsp(options: {
  apiOrigins: string[];
  host?: string;
  /** `frame-ancestors` of an embeddable page (see `frameAncestors`); other pages: 'self' only. */
  frameAncestors?: string;
}): string {
  const ownSockets =
    options.host && PLAIN_HOST.test(options.host) ? [`ws://${options.host}`, `wss://${options.host}`] : [];
  const api = options.apiOrigins.flatMap((origin) => [origin, socketOrigin(origin)]);
  return [
    "default-src 'self'",
    ["connect-src 'self'", ...ownSockets, ...api].join(' '),
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "script-src 'self'",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    options.frameAncestors ?? "frame-ancestors 'self'",
  ].join('; ');
}

/**
 * Who may frame the embeddable pages (the widget's iframe): the sites listed in ALLOWED_ORIGINS. An
 * empty list (allowed outside production only) lets any site frame them, as it lets any origin open
 * a socket.
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

function escapeAttribute(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

/** Serves the web client (SPEC 9): three plain pages and their static assets, all public. */
@ApiExcludeController() // Pages and assets, not an API.
@Controller()
@Public()
export class WebClientController {
  private readonly root = publicRoot();

  constructor(@InjectConfig() private readonly config: AppConfig) {}

  @Get()
  async sessionsRoot(@Req() req: Request, @Res() res: Response): Promise<void> {
    // `{prefix}` without the slash would resolve the pages' relative asset URLs against the parent.
    const [path, query] = req.originalUrl.split(/\?(.*)/s, 2);
    if (!path.endsWith('/')) return res.redirect(301, `${path}/${query ? `?${query}` : ''}`);
    return this.page(req, res, 'sessions.html');
  }

  @Get('sessions-page')
  sessionsPage(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.page(req, res, 'sessions.html');
  }

  @Get('chat')
  chat(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.page(req, res, 'chat.html');
  }

  @Get('admin-page')
  admin(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.page(req, res, 'admin.html');
  }

  /** The embeddable widget, loaded by `<script src>` from other sites (README "Embedding"). */
  @Get('widget.js')
  async widget(@Req() req: Request, @Res() res: Response): Promise<void> {
    res.set('Cross-Origin-Resource-Policy', 'cross-origin');
    await this.send(req, res, await this.read(join(this.root, 'widget.js')), '.js', 'public, max-age=300');
  }

  @Get('assets/vendor/:name')
  async vendor(@Param('name') name: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    const locate = Object.hasOwn(VENDOR, name) ? VENDOR[name] : undefined;
    if (!locate) throw new NotFoundException(`No asset ${name}`);
    await this.send(req, res, await this.read(locate()), '.js', 'public, max-age=3600');
  }

  @Get('assets/:name')
  async asset(@Param('name') name: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    const match = ASSET_NAME.exec(name);
    if (!match) throw new NotFoundException(`No asset ${name}`);
    await this.send(req, res, await this.read(join(this.root, 'assets', name)), `.${match[1]}`, 'no-cache');
  }

  /**
   * A page, told which API origins it may use (a meta tag: pages have no inline script); the
   * script ignores any other `?api=` with a visible notice, and the CSP blocks it anyway.
   */
  private async page(req: Request, res: Response, file: string): Promise<void> {
    const html = (await this.read(join(this.root, file))).toString('utf8');
    const origins = escapeAttribute(this.config.webClientApiOrigins.join(' '));
    const body = html.replace(
      /<head>/i,
      `<head>\n    <meta name="${API_ORIGINS_META}" content="${origins}" />`,
    );
    await this.send(req, res, Buffer.from(body, 'utf8'), '.html', 'no-store', EMBEDDABLE_PAGES.has(file));
  }

  private async read(path: string): Promise<Buffer> {
    try {
      return await readFile(path);
    } catch {
      throw new NotFoundException('Not found');
    }
  }

  private async send(
    req: Request,
    res: Response,
    body: Buffer,
    extension: string,
    cacheControl: string,
    embeddable = false,
  ): Promise<void> {
    const csp = webClientCsp({
      apiOrigins: this.config.webClientApiOrigins,
      host: req.get('host'),
      frameAncestors: embeddable ? frameAncestors(this.config) : undefined,
    });
    res
      .status(200)
      .set({
        'Content-Type': CONTENT_TYPES[extension],
        'Content-Security-Policy': csp,
        'X-Content-Type-Options': 'nosniff',
        // Pages carry the token in their URL until the script moves it to sessionStorage.
        'Referrer-Policy': 'no-referrer',
        'Cache-Control': cacheControl,
      })
      .send(body);
  }
}
