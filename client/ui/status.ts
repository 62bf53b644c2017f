/**
 * The connection and save indicators in the header, driven by the provider's
 * `status` event.
 *
 * `#status` carries `data-connection` (connecting | connected | reconnecting |
 * offline) and `data-transport` (websocket | long-poll | stream, or empty);
 * `#save-status` carries `data-saved` ("true" | "false"). CSS styles from the
 * attributes; tests and people read the text.
 */
import type { ProviderStatus } from '../sync/provider'

/** The part of the provider the indicators need. */
export interface StatusSource {
  readonly status: ProviderStatus
  on(event: 'status', listener: (status: ProviderStatus) => void): void
  off(event: 'status', listener: (status: ProviderStatus) => void): void
}

/** Options for {@link bindStatus}. */
export interface StatusOptions {
  /** The connection indicator, `#status`. */
  statusElement: HTMLElement
  /** The save indicator, `#save-status`. */
  saveElement: HTMLElement
  provider: StatusSource
}

const transportNames: Record<NonNullable<ProviderStatus['transport']>, string> = {
  websocket: 'WebSocket',
  'long-poll': 'Long-polling',
  stream: 'Streaming',
}

/** The connection indicator's text, e.g. "Connected · WebSocket". */
export function describeConnection(status: ProviderStatus): string {
  switch (status.connection) {
    case 'connecting':
      return 'Connecting…'
    case 'connected':
      return status.transport ? `Connected · ${transportNames[status.transport]}` : 'Connected'
    case 'reconnecting':
      return 'Reconnecting…'
    case 'offline':
      return 'Offline'
    default:
      return unexpectedConnection(status.connection)
  }
}

function unexpectedConnection(connection: never): never {
  throw new TypeError(`unexpected connection state: ${String(connection)}`)
}

/** Whether every local change has been confirmed by the server. */
export function isAllSaved(status: ProviderStatus): boolean {
  return status.unsavedCount === 0
}

/** The save indicator's text. */
export function describeSave(status: ProviderStatus): string {
  if (isAllSaved(status)) return status.readOnly ? 'View only' : 'All changes saved'
  if (status.sizeLimitReached) return 'Not saved — size limit'
  return status.saveError ? 'Not saved — retrying' : 'Saving…'
}

/**
 * Keep `statusElement` and `saveElement` showing the provider's status.
 * Returns a function that stops listening.
 */
export function bindStatus(options: StatusOptions): () => void {
  const { statusElement, saveElement, provider } = options

  // Fixed children, built once; only their text changes.
  const dot = document.createElement('span')
  dot.className = 'status-dot'
  dot.setAttribute('aria-hidden', 'true')
  const text = document.createElement('span')
  text.className = 'status-text'
  statusElement.replaceChildren(dot, text)
  statusElement.setAttribute('role', 'status')
  saveElement.setAttribute('role', 'status')

  const render = (status: ProviderStatus): void => {
    statusElement.dataset['connection'] = status.connection
    statusElement.dataset['transport'] = status.transport ?? ''
    text.textContent = describeConnection(status)
    statusElement.title = status.synced || status.connection !== 'connected'
      ? text.textContent
      : `${text.textContent} — loading the latest version`

    const saved = isAllSaved(status)
    saveElement.dataset['saved'] = String(saved)
    saveElement.toggleAttribute('data-error', !saved && (status.saveError !== null || status.sizeLimitReached))
    saveElement.textContent = describeSave(status)
    saveElement.title = saved ? '' : status.sizeLimitReached ? 'The document reached its size limit on the server' : (status.saveError ?? '')
  }

  render(provider.status)
  provider.on('status', render)
  return () => provider.off('status', render)
}
