// Builds the browser client (dist/client) and the server (dist/server) with esbuild.
import { build } from 'esbuild'
import { copyFile, mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const out = path.join(root, 'dist')
await rm(out, { recursive: true, force: true })
await mkdir(path.join(out, 'client'), { recursive: true })

await Promise.all([
  build({
    entryPoints: [path.join(root, 'client/main.ts')],
    outfile: path.join(out, 'client/app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    sourcemap: true,
    logLevel: 'warning',
  }),
  build({
    // The merge thread's module (server/storage/update-merger.ts) sits beside the server.
    entryPoints: { main: path.join(root, 'server/main.ts'), 'merge-worker': path.join(root, 'server/storage/merge-worker.ts') },
    outdir: path.join(out, 'server'),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: ['node20'],
    packages: 'external',
    sourcemap: true,
    logLevel: 'warning',
    banner: { js: '#!/usr/bin/env node' },
  }),
  copyFile(path.join(root, 'client/index.html'), path.join(out, 'client/index.html')),
  copyFile(path.join(root, 'client/style.css'), path.join(out, 'client/app.css')),
])
console.log('built dist/client and dist/server')
