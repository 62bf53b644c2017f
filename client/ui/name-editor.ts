/**
 * The "you are" controls in the header: a name field `#user-name` and a
 * colour picker `#user-color`. Edits are shown to others at once through
 * awareness and remembered in this browser.
 */
import type { Awareness } from 'y-protocols/awareness'
import { cleanName, isHexColor, maxNameLength, saveIdentity } from './identity'
import type { Identity } from './identity'

/** Options for {@link bindNameEditor}. */
export interface NameEditorOptions {
  /** The `<input id="user-name">`. */
  nameInput: HTMLInputElement
  /** The `<input type="color" id="user-color">`. */
  colorInput: HTMLInputElement
  awareness: Awareness
  /** The identity to start from, usually {@link loadIdentity}'s. */
  identity: Identity
  /** Storage to remember edits in. @default localStorage */
  storage?: Storage | null
}

/**
 * Fill the inputs from `identity` and publish every valid edit. An empty name
 * is never published: the previous one stays until the field has text again,
 * and is put back when the field loses focus. Returns a function that
 * detaches the listeners.
 */
export function bindNameEditor(options: NameEditorOptions): () => void {
  const { nameInput, colorInput, awareness } = options
  let current: Identity = { ...options.identity }

  nameInput.maxLength = maxNameLength
  nameInput.setAttribute('autocomplete', 'nickname')
  nameInput.spellcheck = false
  nameInput.value = current.name
  colorInput.type = 'color'
  colorInput.value = current.color

  const publish = (next: Identity): void => {
    if (next.name === current.name && next.color === current.color) return
    current = next
    awareness.setLocalStateField('user', { name: current.name, color: current.color })
    if (options.storage === undefined) saveIdentity(current)
    else saveIdentity(current, options.storage)
  }

  const onNameInput = (): void => {
    const name = cleanName(nameInput.value)
    if (name !== null) publish({ ...current, name })
  }
  const onNameCommit = (): void => {
    onNameInput()
    if (nameInput.value !== current.name) nameInput.value = current.name
  }
  const onNameKeyDown = (event: KeyboardEvent): void => {
    if (event.key === 'Enter' || event.key === 'Escape') {
      event.preventDefault()
      nameInput.blur()
    }
  }
  const onColorInput = (): void => {
    const color = colorInput.value.toLowerCase()
    if (isHexColor(color)) publish({ ...current, color })
  }

  nameInput.addEventListener('input', onNameInput)
  nameInput.addEventListener('change', onNameCommit)
  nameInput.addEventListener('blur', onNameCommit)
  nameInput.addEventListener('keydown', onNameKeyDown)
  colorInput.addEventListener('input', onColorInput)
  colorInput.addEventListener('change', onColorInput)

  return () => {
    nameInput.removeEventListener('input', onNameInput)
    nameInput.removeEventListener('change', onNameCommit)
    nameInput.removeEventListener('blur', onNameCommit)
    nameInput.removeEventListener('keydown', onNameKeyDown)
    colorInput.removeEventListener('input', onColorInput)
    colorInput.removeEventListener('change', onColorInput)
  }
}
