/**
 * The upstream half of the HTTP transports (long-polling and streaming):
 * `POST /comet/send?sid=` one batch at a time, in order; batches sent while
 * a POST is in flight are concatenated into the next one; a POST that fails
 * on the network or with a 5xx is retried with the same bytes (harmless:
 * the server drops Data frames whose seq it already has). A normal close
 * still delivers what is queued (the goodbye), with `keepalive` so that it
 * outlives an unloading page.
 */
import { CloseCode } from '../../../common/close-codes'
import type { TransportContext } from '../transport'

/** WebSocket's "abnormal closure": the connection failed without a close. */
export const AbnormalClosure = 1006

/** The content type of batches on the wire. */
export const batchType = 'application/octet-stream'

/**
 * `<baseUrl><path>?<params>`, for the requests made once per poll or send:
 * a string built at once costs a fraction of a `URL` whose
 * `searchParams.set` re-serialises the whole address on every call.
 */
export function endpointUrl(baseUrl: string, path: string, params: Record<string, string>): string {
  const query = new URLSearchParams(params).toString()
  return query === '' ? `${baseUrl}${path}` : `${baseUrl}${path}?${query}`
}

// Browsers cap the bodies of keepalive requests (64 KiB in all of them).
const keepaliveMaxBytes = 60 * 1024

/** What the uploader needs from the transport it serves. */
export interface UploaderHost {
  /** Whether upstream may go now (the transport is open and has a session). */
  readonly isReady: boolean
  /** Whether the transport is closed. */
  readonly isClosed: boolean
  /** A 2xx answer: a piggybacked downstream batch, or empty. */
  onReply(body: Uint8Array): void
  /** A 4xx answer; the transport decides what it means. */
  onRefused(response: Response, body: Uint8Array): void
  /** Every retry failed. */
  onFailed(reason: string): void
}

/** Options of an {@link Uploader}. */
export interface UploaderOptions {
  baseUrl: string
  context: TransportContext
  fetch: typeof fetch
  host: UploaderHost
  /** Retries of a failed POST before giving up. @default 3 */
  retries?: number
  /** First delay between retries, doubled each time, in ms. @default 250 */
  retryDelayMs?: number
}

/** See the module comment. */
export class Uploader {
  private readonly queue: Uint8Array[] = []
  private readonly abort = new AbortController()
  private isSending = false
  private isDraining = false
  private retryTimer: ReturnType<typeof setTimeout> | null = null
  private endRetryWait: (() => void) | null = null
  private readonly retries: number
  private readonly retryDelayMs: number

  constructor(private readonly options: UploaderOptions) {
    this.retries = options.retries ?? 3
    this.retryDelayMs = options.retryDelayMs ?? 250
  }

  /** Queue a batch and send it as soon as possible. */
  send(batch: Uint8Array): void {
    this.queue.push(batch)
    void this.run()
  }

  /** Send what waits, e.g. once the session id became known. */
  kick(): void {
    void this.run()
  }

  /**
   * The transport closed. After a normal close what is queued still goes
   * out once (the goodbye); otherwise everything stops at once.
   */
  finish(isNormal: boolean): void {
    if (isNormal && this.queue.length + (this.isSending ? 1 : 0) > 0) {
      this.isDraining = true
      this.endRetryWait?.()
      return
    }
    this.abort.abort()
    this.queue.length = 0
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.retryTimer = null
  }

  private get mayContinue(): boolean {
    return !this.options.host.isClosed || this.isDraining
  }

  private async run(): Promise<void> {
    if (this.isSending) return
    this.isSending = true
    try {
      while (this.queue.length > 0 && this.mayContinue) {
        const sid = this.options.context.sessionId()
        // Upstream frames belong to a session: wait for the Hello.
        if (!this.options.host.isReady || sid === null) return
        if (!(await this.post(sid, concat(this.queue.splice(0))))) return
      }
    } finally {
      this.isSending = false
    }
  }

  /** POST one batch, retrying network failures and 5xx; false when the transport is done. */
  private async post(sid: string, body: Uint8Array<ArrayBuffer>): Promise<boolean> {
    const { host } = this.options
    const url = endpointUrl(this.options.baseUrl, '/comet/send', { sid })
    for (let attempt = 0; ; attempt++) {
      let failure: string
      try {
        const response = await this.options.fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': batchType },
          body,
          cache: 'no-store',
          credentials: 'same-origin',
          signal: this.abort.signal,
          keepalive: this.isDraining && body.byteLength <= keepaliveMaxBytes,
        })
        const reply = new Uint8Array(await response.arrayBuffer())
        if (host.isClosed) return this.isDraining
        if (response.ok) {
          host.onReply(reply)
          return !host.isClosed
        }
        if (response.status < 500) {
          host.onRefused(response, reply)
          return false
        }
        failure = `HTTP ${response.status}`
      } catch (error) {
        failure = describeError(error)
      }
      // A normal close sends its goodbye once; nobody waits for a retry.
      if (host.isClosed) return false
      if (attempt >= this.retries) {
        host.onFailed(`send failed ${attempt + 1} times: ${failure}`)
        return false
      }
      await this.waitBeforeRetry(this.retryDelayMs * 2 ** attempt)
      if (!this.mayContinue) return false
    }
  }

  private waitBeforeRetry(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const end = () => {
        if (this.retryTimer) clearTimeout(this.retryTimer)
        this.retryTimer = null
        this.endRetryWait = null
        resolve()
      }
      this.endRetryWait = end
      this.retryTimer = setTimeout(end, ms)
    })
  }
}

/** The close code for an HTTP error status that carries no Close frame of its own. */
export function closeCodeForStatus(status: number): number {
  if (status === 404) return CloseCode.SessionUnknown
  if (status === 400) return CloseCode.BadFrame
  if (status === 413) return CloseCode.TooLarge
  if (status === 409) return CloseCode.Replaced
  if (status === 429) return CloseCode.RateLimited
  return CloseCode.InternalError
}

/** Whether a response body is (claims to be) a batch. */
export function isBatchResponse(response: Response): boolean {
  const type = response.headers.get('content-type')
  return type === null || type.startsWith(batchType)
}

/** Concatenate byte arrays (concatenated batches are a batch). */
export function concat(chunks: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let length = 0
  for (const chunk of chunks) length += chunk.byteLength
  const bytes = new Uint8Array(length)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return bytes
}

/** An error's message with its cause (fetch hides the network reason in `cause`). */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const cause = (error as { cause?: unknown }).cause
  return cause instanceof Error ? `${error.message} (${cause.message})` : error.message
}
