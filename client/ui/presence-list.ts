/**
 * Who is here: one coloured avatar with initials per awareness state,
 * yourself first and marked "(you)", re-rendered on every awareness change.
 *
 * Names come from other browsers: they are set with `textContent` and
 * attributes only, never parsed as HTML.
 */
import type { Awareness } from 'y-protocols/awareness'
import { readUser, textColorOn } from './identity'
import type { Identity } from './identity'

/** Options for {@link bindPresenceList}. */
export interface PresenceListOptions {
  /** The header element that holds the avatars, `#presence`. */
  container: HTMLElement
  awareness: Awareness
  /**
   * Avatars shown before the rest collapse into a "+N" counter.
   * @default 6
   */
  maxVisible?: number
}

/** One or two letters for an avatar: "Curious Otter" → "CO", "ada" → "A". */
export function initials(name: string): string {
  const words = name.split(/\s+/).filter((word) => word !== '')
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : [words[0]]
  return letters.map(initial).join('').toUpperCase() || '?'
}

/** A word's first letter or digit, else its first character ("(Ann)" → "A"). */
function initial(word: string | undefined): string {
  // Array.from splits by code point, so an emoji initial stays whole.
  const chars = Array.from(word ?? '')
  return chars.find((char) => /[\p{L}\p{N}]/u.test(char)) ?? chars[0] ?? ''
}

interface PresentUser extends Identity {
  clientId: number
  isSelf: boolean
}

function presentUsers(awareness: Awareness): PresentUser[] {
  const users: PresentUser[] = []
  awareness.getStates().forEach((state, clientId) => {
    users.push({ ...readUser(state), clientId, isSelf: clientId === awareness.clientID })
  })
  // Yourself first, then everyone else by name, so the list does not reshuffle as people type.
  return users.sort((a, b) => Number(b.isSelf) - Number(a.isSelf) || a.name.localeCompare(b.name) || a.clientId - b.clientId)
}

function renderUser(user: PresentUser): HTMLElement {
  const item = document.createElement('li')
  item.className = 'presence-user'
  item.dataset['name'] = user.name
  item.dataset['clientId'] = String(user.clientId)
  item.title = user.name
  item.style.setProperty('--user-color', user.color)
  item.style.backgroundColor = user.color
  item.style.color = textColorOn(user.color)
  if (user.isSelf) {
    item.classList.add('presence-user-self')
    item.dataset['self'] = 'true'
  }

  const letters = document.createElement('span')
  letters.className = 'presence-initials'
  letters.setAttribute('aria-hidden', 'true')
  letters.textContent = initials(user.name)

  // Screen readers get the whole name; sighted users get it from the tooltip.
  const name = document.createElement('span')
  name.className = 'visually-hidden'
  name.textContent = user.isSelf ? `${user.name} (you)` : user.name

  item.append(letters, name)
  return item
}

/**
 * Keep `container` listing everyone in `awareness`. Returns a function that
 * stops listening.
 */
export function bindPresenceList(options: PresenceListOptions): () => void {
  const { container, awareness, maxVisible = 6 } = options
  const list = document.createElement('ul')
  list.className = 'presence-list'
  list.setAttribute('aria-label', 'People in this document')
  container.replaceChildren(list)

  let rendered = ''
  const render = (): void => {
    const users = presentUsers(awareness)
    // Most changes are cursor moves. Skip those: replacing the elements would
    // also dismiss a tooltip the user is reading.
    const signature = JSON.stringify(users)
    if (signature === rendered) return
    rendered = signature
    const visible = users.slice(0, maxVisible)
    const hidden = users.slice(maxVisible)
    const items = visible.map(renderUser)
    if (hidden.length > 0) {
      const more = document.createElement('li')
      more.className = 'presence-more'
      more.textContent = `+${hidden.length}`
      more.title = hidden.map((user) => user.name).join(', ')
      items.push(more)
    }
    list.replaceChildren(...items)
    container.dataset['count'] = String(users.length)
  }

  // 'change' fires only when a state's content changes (a join, leave, rename
  // or cursor move), not on the keep-alive renewals that 'update' reports.
  awareness.on('change', render)
  render()
  return () => awareness.off('change', render)
}
