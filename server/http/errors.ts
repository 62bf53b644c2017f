/**
 * The one error middleware at the top of the Koa stack: exposed HTTP errors
 * reach the client with their message; anything else is logged and answered
 * with a plain 500.
 */
import type { Middleware } from 'koa'
import type { Logger } from 'pino'

interface HttpErrorLike {
  status?: number
  expose?: boolean
  message: string
}

/** Koa middleware turning thrown errors into responses. */
export function errors(logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next()
    } catch (caught) {
      const error = caught as HttpErrorLike
      const status = typeof error.status === 'number' && error.status >= 400 && error.status < 600 ? error.status : 500
      if (status >= 500) logger.error({ err: caught, method: ctx.method, path: ctx.path }, 'request failed')
      ctx.status = status
      const message = error.expose ? error.message : status >= 500 ? 'Internal Server Error' : error.message
      if (ctx.accepts('json', 'html', 'text') === 'json') ctx.body = { error: message }
      else ctx.body = message
    }
  }
}
