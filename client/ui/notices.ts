/**
 * The notice bar under the header: what the server refused for this
 * document, said plainly and without blocking the editor. Driven by the
 * provider's `status` event.
 *
 * `#notices` holds one `.notice` per active notice, each with
 * `data-notice` (size-limit | server-busy); it is empty and hidden when
 * there is nothing to say. Tests and people read the text.
 */
import type { ProviderStatus } from '../sync/provider'
import type { StatusSource } from './status'

/** A notice the bar can show. */
export interface Notice {
  kind: 'size-limit' | 'server-busy'
  text: string
}

/** The notices `status` calls for, most important first. */
export function describeNotices(status: ProviderStatus): Notice[] {
  const notices: Notice[] = []
  if (status.sizeLimitReached) {
    notices.push({ kind: 'size-limit', text: 'This document has reached its size limit; your last change was not saved.' })
  }
  if (status.serverBusy) {
    notices.push({ kind: 'server-busy', text: 'The server is busy and cannot open this document right now; retrying…' })
  }
  return notices
}

/** Options for {@link bindNotices}. */
export interface NoticesOptions {
  /** The notice bar, `#notices`. */
  container: HTMLElement
  provider: StatusSource
}

/** Keep `container` showing the provider's notices. Returns a function that stops listening. */
export function bindNotices(options: NoticesOptions): () => void {
  const { container, provider } = options
  // Polite: announced when the reader pauses, never stealing focus from the editor.
  container.setAttribute('role', 'status')
  container.setAttribute('aria-live', 'polite')
  let shown = ''
  const render = (status: ProviderStatus): void => {
    const notices = describeNotices(status)
    const key = notices.map((notice) => notice.kind).join(' ')
    if (key === shown) return
    shown = key
    container.replaceChildren(
      ...notices.map((notice) => {
        const element = document.createElement('p')
        element.className = 'notice'
        element.dataset['notice'] = notice.kind
        element.textContent = notice.text
        return element
      }),
    )
    container.hidden = notices.length === 0
  }
  render(provider.status)
  provider.on('status', render)
  return () => provider.off('status', render)
}
