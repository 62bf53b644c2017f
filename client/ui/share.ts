/**
 * The Share button `#share`: copies this document's link to the clipboard
 * and says "Link copied". Where the Clipboard API is missing (plain HTTP on a
 * LAN address is not a secure context) or refused, it opens a small popover
 * with the link selected, ready for Ctrl+C.
 */

/** Options for {@link bindShareButton}. */
export interface ShareOptions {
  button: HTMLButtonElement
  /** The link to share. @default location.origin + location.pathname */
  link?: () => string
  /** How long the "Link copied" feedback shows, in milliseconds. @default 2000 */
  feedbackMs?: number
}

/** This document's edit link: the page address without query or fragment. */
export function documentLink(): string {
  return location.origin + location.pathname
}

async function copyText(text: string): Promise<boolean> {
  if (!navigator.clipboard?.writeText) return false
  try {
    await navigator.clipboard.writeText(text)
    return true
  } catch {
    // Permission denied, document not focused, insecure context: fall back.
    return false
  }
}

/**
 * Make `button` share the document link. Returns a function that detaches it
 * and removes any open popover.
 */
export function bindShareButton(options: ShareOptions): () => void {
  const { button, link = documentLink, feedbackMs = 2000 } = options
  const idleLabel = button.textContent?.trim() || 'Share'
  button.type = 'button'
  button.setAttribute('aria-haspopup', 'dialog')
  button.setAttribute('aria-expanded', 'false')
  if (!button.title) button.title = 'Copy a link to this document'

  // Announces "Link copied" to screen readers without moving focus.
  const announcer = document.createElement('span')
  announcer.className = 'visually-hidden'
  announcer.setAttribute('aria-live', 'polite')
  button.after(announcer)

  let feedbackTimer: ReturnType<typeof setTimeout> | undefined
  let popover: HTMLElement | null = null

  const showCopied = (): void => {
    clearTimeout(feedbackTimer)
    button.textContent = 'Link copied'
    button.dataset['copied'] = 'true'
    announcer.textContent = 'Link copied'
    feedbackTimer = setTimeout(() => {
      button.textContent = idleLabel
      delete button.dataset['copied']
      announcer.textContent = ''
    }, feedbackMs)
  }

  const closePopover = (): void => {
    if (!popover) return
    popover.remove()
    popover = null
    button.setAttribute('aria-expanded', 'false')
    document.removeEventListener('pointerdown', onOutsidePointer, true)
  }

  const onOutsidePointer = (event: PointerEvent): void => {
    if (popover && event.target instanceof Node && !popover.contains(event.target) && event.target !== button) closePopover()
  }

  const openPopover = (url: string): void => {
    closePopover()
    const box = document.createElement('div')
    box.className = 'share-popover'
    box.setAttribute('role', 'dialog')
    box.setAttribute('aria-label', 'Share link')

    const label = document.createElement('label')
    label.className = 'share-popover-label'
    label.textContent = 'Copy this link to share the document'
    const input = document.createElement('input')
    input.id = 'share-link'
    input.type = 'text'
    input.readOnly = true
    input.value = url
    label.htmlFor = input.id

    const hint = document.createElement('p')
    hint.className = 'share-popover-hint'
    hint.textContent = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent) ? 'Press ⌘C to copy.' : 'Press Ctrl+C to copy.'

    box.append(label, input, hint)
    box.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        closePopover()
        button.focus()
      }
    })
    input.addEventListener('copy', () => {
      showCopied()
      // Let the copy finish before the input disappears.
      setTimeout(closePopover, 0)
    })
    button.after(box)
    popover = box
    button.setAttribute('aria-expanded', 'true')
    document.addEventListener('pointerdown', onOutsidePointer, true)
    input.focus()
    input.select()
  }

  const onClick = async (): Promise<void> => {
    if (popover) {
      closePopover()
      return
    }
    const url = link()
    if (await copyText(url)) showCopied()
    else openPopover(url)
  }
  const onClickListener = (): void => void onClick()
  button.addEventListener('click', onClickListener)

  return () => {
    button.removeEventListener('click', onClickListener)
    clearTimeout(feedbackTimer)
    closePopover()
    announcer.remove()
    button.textContent = idleLabel
  }
}
