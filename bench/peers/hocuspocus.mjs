// Hocuspocus as the benchmark runs it: the stock server, no extensions, on
// the loopback port given in PORT. Plain JavaScript, so the process carries
// no TypeScript loader that our server's built bundle does not carry either.
import { Server } from '@hocuspocus/server'

const server = new Server({ port: Number(process.env.PORT ?? 0), address: '127.0.0.1', quiet: true })
await server.listen()
process.stdout.write(`hocuspocus listening on http://127.0.0.1:${server.address.port}\n`)
