/**
 * The Share button `#share`: opens a small dialog offering this document's
 * links, each with a Copy button — the edit link and the view-only link for
 * an editor, only the view-only link for a reader. The edit page learns its
 * view link from the server (`GET /api/docs/<id>/links`) when the dialog
 * opens. Where the Clipboard API is missing (plain HTTP on a LAN address is
 * not a secure context) or refused, Copy selects the link, ready for Ctrl+C.
 * Everything is built with `textContent` and `value`, never HTML.
 */

/** A document's two links. */
export interface ShareLinks {
  editUrl: string
  viewUrl: string
}

/** Options for {@link bindShareButton}. */
export interface ShareOptions {
  button: HTMLButtonElement
  /** What this page may do: an editor is offered both links, a reader only the view link. */
  mode: 'edit' | 'view'
  /**
   * The links to offer. For an editor, called each time the dialog opens.
   * @default for an editor, fetched from `/api/docs/<id>/links`; for a
   * reader, this page's address
   */
  links?: () => Promise<ShareLinks | { viewUrl: string }>
  /** How long the "Copied" feedback shows, in milliseconds. @default 2000 */
  feedbackMs?: number
}

/** This page's address without query or fragment. */
export function documentLink(): string {
  return location.origin + location.pathname
}

/** The links of the document this edit page shows, from the server. */
export async function fetchShareLinks(): Promise<ShareLinks> {
  const id = /^\/d\/([A-Za-z0-9_-]+)/.exec(location.pathname)?.[1]
  if (!id) throw new Error('this page is not an edit link')
  const response = await fetch(`/api/docs/${encodeURIComponent(id)}/links`, { headers: { Accept: 'application/json' }, cache: 'no-store' })
  if (!response.ok) throw new Error(`the server answered ${response.status}`)
  const body = (await response.json()) as Partial<ShareLinks>
  if (typeof body.editUrl !== 'string' || typeof body.viewUrl !== 'string') throw new Error('the server sent no links')
  return { editUrl: body.editUrl, viewUrl: body.viewUrl }
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

const copyHint = (): string => (/Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent) ? 'Press ⌘C to copy.' : 'Press Ctrl+C to copy.')

interface LinkRow {
  row: HTMLElement
  input: HTMLInputElement
  copy: HTMLButtonElement
}

/**
 * Make `button` open the share dialog. Returns a function that detaches it
 * and removes the dialog if open.
 */
export function bindShareButton(options: ShareOptions): () => void {
  const { button, mode, feedbackMs = 2000 } = options
  const links = options.links ?? (mode === 'edit' ? fetchShareLinks : async () => ({ viewUrl: documentLink() }))
  button.type = 'button'
  button.setAttribute('aria-haspopup', 'dialog')
  button.setAttribute('aria-expanded', 'false')
  if (!button.title) button.title = mode === 'edit' ? 'Share an edit or view-only link to this document' : 'Share a view-only link to this document'

  // Announces "Link copied" to screen readers without moving focus.
  const announcer = document.createElement('span')
  announcer.className = 'visually-hidden'
  announcer.setAttribute('aria-live', 'polite')
  button.after(announcer)

  let popover: HTMLElement | null = null
  /** Bumped on every open and close, so a late links answer finds its dialog gone. */
  let generation = 0
  const timers = new Set<ReturnType<typeof setTimeout>>()

  const closePopover = (): void => {
    generation++
    if (!popover) return
    popover.remove()
    popover = null
    button.setAttribute('aria-expanded', 'false')
    document.removeEventListener('pointerdown', onOutsidePointer, true)
  }

  const onOutsidePointer = (event: PointerEvent): void => {
    if (popover && event.target instanceof Node && !popover.contains(event.target) && event.target !== button) closePopover()
  }

  const linkRow = (key: 'edit' | 'view', labelText: string, placeholder: string): LinkRow => {
    const row = document.createElement('div')
    row.className = 'share-link'
    row.dataset['link'] = key
    const label = document.createElement('label')
    label.className = 'share-popover-label'
    label.textContent = labelText
    const input = document.createElement('input')
    input.id = `share-${key}-link`
    input.type = 'text'
    input.readOnly = true
    input.placeholder = placeholder
    label.htmlFor = input.id
    const copy = document.createElement('button')
    copy.type = 'button'
    copy.className = 'share-copy'
    copy.textContent = 'Copy'
    copy.disabled = true
    copy.setAttribute('aria-label', `Copy the ${labelText.toLowerCase()}`)
    const hint = document.createElement('p')
    hint.className = 'share-popover-hint'
    hint.hidden = true
    const field = document.createElement('div')
    field.className = 'share-link-field'
    field.append(input, copy)
    row.append(label, field, hint)

    const copied = (): void => {
      copy.textContent = 'Copied'
      copy.dataset['copied'] = 'true'
      announcer.textContent = `${labelText} copied`
      const timer = setTimeout(() => {
        timers.delete(timer)
        copy.textContent = 'Copy'
        delete copy.dataset['copied']
        announcer.textContent = ''
      }, feedbackMs)
      timers.add(timer)
    }
    copy.addEventListener('click', () => {
      void copyText(input.value).then((ok) => {
        if (ok) {
          copied()
          return
        }
        hint.textContent = copyHint()
        hint.hidden = false
        input.focus()
        input.select()
      })
    })
    input.addEventListener('copy', copied)
    input.addEventListener('focus', () => input.select())
    return { row, input, copy }
  }

  const fill = (row: LinkRow, url: string): void => {
    row.input.value = url
    row.copy.disabled = false
  }

  const openPopover = (): void => {
    closePopover()
    const opened = ++generation
    const box = document.createElement('div')
    box.className = 'share-popover'
    box.setAttribute('role', 'dialog')
    box.setAttribute('aria-label', 'Share this document')

    const title = document.createElement('p')
    title.className = 'share-popover-title'
    title.textContent = mode === 'edit' ? 'Share this document' : 'Share a view-only link'
    const status = document.createElement('p')
    status.className = 'share-popover-status'
    status.setAttribute('role', 'status')
    status.textContent = 'Loading links…'

    const edit = mode === 'edit' ? linkRow('edit', 'Edit link', 'Loading…') : null
    const view = linkRow('view', 'View-only link', 'Loading…')
    if (edit) {
      // Known from the address at once; the server is asked only for the view link.
      fill(edit, documentLink())
      const note = document.createElement('p')
      note.className = 'share-popover-hint'
      note.textContent = 'Anyone with this link can change the document.'
      edit.row.append(note)
    }
    const viewNote = document.createElement('p')
    viewNote.className = 'share-popover-hint'
    viewNote.textContent = 'Anyone with this link can read the document and see who is here, but not change it.'
    view.row.append(viewNote)

    box.append(title, ...(edit ? [edit.row] : []), view.row, status)
    box.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.stopPropagation()
        closePopover()
        button.focus()
      }
    })
    button.after(box)
    popover = box
    button.setAttribute('aria-expanded', 'true')
    document.addEventListener('pointerdown', onOutsidePointer, true)
    ;(edit ?? view).copy.focus()

    links().then(
      (found) => {
        if (generation !== opened) return
        if ('editUrl' in found && edit) fill(edit, found.editUrl)
        fill(view, found.viewUrl)
        status.textContent = ''
        if (!edit) view.copy.focus()
      },
      () => {
        if (generation !== opened) return
        view.input.placeholder = 'Unavailable'
        status.textContent = 'The view-only link could not be loaded. Close this and try again.'
      },
    )
  }

  const onClick = (): void => {
    if (popover) closePopover()
    else openPopover()
  }
  button.addEventListener('click', onClick)

  return () => {
    button.removeEventListener('click', onClick)
    for (const timer of timers) clearTimeout(timer)
    timers.clear()
    closePopover()
    announcer.remove()
  }
}
