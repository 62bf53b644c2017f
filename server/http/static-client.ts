/**
 * Serves the built browser client (dist/client): the editor page and its
 * assets. Files are read once at start-up into memory; only names in that
 * set are ever served, so no request path reaches the file system.
 */
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

interface Asset {
  body: Buffer
  type: string
  etag: string
}

const types: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.png': 'image/png',
}

/** The built client files. */
export class StaticClient {
  private readonly assets = new Map<string, Asset>()

  constructor(readonly dir: string) {
    if (!existsSync(dir)) return
    for (const name of readdirSync(dir)) {
      const type = types[path.extname(name)]
      if (!type) continue
      const body = readFileSync(path.join(dir, name))
      this.assets.set(name, { body, type, etag: `"${createHash('sha1').update(body).digest('base64url')}"` })
    }
  }

  /** Whether the client was built (the page and its script exist). */
  get isBuilt(): boolean {
    return this.assets.has('index.html') && this.assets.has('app.js')
  }

  /** A file by its name, or undefined. */
  get(name: string): Asset | undefined {
    return this.assets.get(name)
  }
}

/**
 * Where the built client lives: `dist/client` beside `dist/server` when
 * running the build, or `<root>/dist/client` when running the sources.
 */
export function defaultClientDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url))
  const candidates = [path.resolve(here, '../client'), path.resolve(here, '../../dist/client'), path.resolve(here, '../dist/client')]
  return candidates.find((dir) => existsSync(path.join(dir, 'app.js'))) ?? candidates[1]!
}
