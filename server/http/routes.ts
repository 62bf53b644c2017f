/**
 * The HTTP routes: new documents, the editor page, the built assets and
 * the health check.
 *
 *   GET  /                     create a document, 302 to its edit link /d/<id>
 *   GET  /d/<id>               the editor page (404 for an unknown document;
 *                              a view id is redirected to /v/<id>)
 *   GET  /v/<id>               the editor page, view only (404 for an unknown
 *                              document; an edit id is redirected to its view link)
 *   POST /api/docs             create a document, JSON { id, editUrl, viewUrl }
 *   GET  /api/docs/<id>/links  an edit id's links, JSON { editUrl, viewUrl }
 *                              (403 for a view id, 404 for an unknown one)
 *   GET  /assets/<f>  the built client
 *   GET  /healthz     200 while the store works, 503 otherwise
 */
import type { Middleware } from 'koa'
import type { Context } from 'koa'
import type { DocDirectory } from '../docs/doc-directory'
import type { HealthReporting } from '../storage/doc-store'
import type { StaticClient } from './static-client'

/** What the routes need. */
export interface RoutesOptions {
  directory: DocDirectory
  store: HealthReporting
  client: StaticClient
}

// The page runs only our own script; y-prosemirror styles cursors inline.
const pageSecurityHeaders: Record<string, string> = {
  'Content-Security-Policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
}

function origin(ctx: Context): string {
  return `${ctx.protocol}://${ctx.host}`
}

/** Koa middleware for the routes above. */
export function routes({ directory, store, client }: RoutesOptions): Middleware {
  return async (ctx, next) => {
    const { method, path } = ctx
    if (path === '/healthz' && (method === 'GET' || method === 'HEAD')) {
      const health = store.health()
      ctx.set('Cache-Control', 'no-store')
      ctx.status = health.ok ? 200 : 503
      ctx.body = health
      return
    }
    if (path === '/' && (method === 'GET' || method === 'HEAD')) {
      const { docId } = await directory.create()
      ctx.set('Cache-Control', 'no-store')
      ctx.redirect(`/d/${docId}`)
      return
    }
    if (path === '/api/docs' && method === 'POST') {
      const { docId, viewId } = await directory.create()
      ctx.set('Cache-Control', 'no-store')
      ctx.status = 201
      ctx.body = { id: docId, editUrl: `${origin(ctx)}/d/${docId}`, viewUrl: `${origin(ctx)}/v/${viewId}` }
      return
    }
    const links = /^\/api\/docs\/([^/]*)\/links$/.exec(path)
    if (links && (method === 'GET' || method === 'HEAD')) {
      const access = await directory.resolve(links[1]!)
      ctx.set('Cache-Control', 'no-store')
      if (!access) {
        ctx.status = 404
        ctx.body = { error: 'no document has this address' }
      } else if (!access.canWrite) {
        ctx.status = 403
        ctx.body = { error: 'a view-only link cannot see the edit link' }
      } else {
        ctx.body = { editUrl: `${origin(ctx)}/d/${access.docId}`, viewUrl: `${origin(ctx)}/v/${access.viewId}` }
      }
      return
    }
    const page = /^\/([dv])\/([^/]*)$/.exec(path)
    if (page && (method === 'GET' || method === 'HEAD')) {
      const wantsEdit = page[1] === 'd'
      const access = await directory.resolve(page[2]!)
      ctx.set(pageSecurityHeaders)
      ctx.set('Cache-Control', 'no-store')
      if (!access) {
        ctx.status = 404
        ctx.type = 'text/html; charset=utf-8'
        ctx.body = notFoundPage
        return
      }
      // The page's path says what it may do: a view id never opens as /d/,
      // and /v/ never shows an edit id (which the page would offer as its view link).
      if (wantsEdit && !access.canWrite) {
        ctx.redirect(`/v/${page[2]!}`)
        return
      }
      if (!wantsEdit && access.canWrite) {
        ctx.redirect(`/v/${access.viewId}`)
        return
      }
      const index = client.get('index.html')
      if (!index) {
        ctx.status = 503
        ctx.body = 'The browser client is not built. Run `npm run build` and restart.'
        return
      }
      ctx.type = index.type
      ctx.body = index.body
      return
    }
    const asset = /^\/assets\/([A-Za-z0-9._-]+)$/.exec(path)
    if (asset && (method === 'GET' || method === 'HEAD')) {
      const file = client.get(asset[1]!)
      if (!file || asset[1] === 'index.html') {
        ctx.status = 404
        return
      }
      ctx.set('Cache-Control', 'no-cache')
      ctx.set('ETag', file.etag)
      ctx.set('X-Content-Type-Options', 'nosniff')
      if (ctx.get('If-None-Match') === file.etag) {
        ctx.status = 304
        return
      }
      ctx.type = file.type
      ctx.body = file.body
      return
    }
    await next()
  }
}

const notFoundPage = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Document not found · Cometpad</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1rem;color:#222}a{color:#2563eb}</style></head>
<body><h1>Document not found</h1><p>No document has this link. Check that you copied the whole link, or <a href="/">start a new document</a>.</p></body></html>`
