/**
 * The browser entry point: finds the document in the address (`/d/<id>`),
 * wires Y.Doc, awareness, local persistence, the Comet provider, the editor
 * and the header UI together, and exposes them as `window.cometpad` for
 * debugging and end-to-end tests.
 */
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { IndexeddbPersistence } from 'y-indexeddb'
import type { EditorView } from 'prosemirror-view'
import { Channel } from './comet/channel'
import { SharedChannel, type ChannelPort } from './comet/tab-leader'
import { CometProvider } from './sync/provider'
import type { ProviderStatus } from './sync/provider'
import { createEditorView, setReadOnly } from './editor/setup'
import { toolbarPlugin } from './editor/toolbar'
import { loadIdentity } from './ui/identity'
import { bindPresenceList } from './ui/presence-list'
import { bindNameEditor } from './ui/name-editor'
import { bindStatus } from './ui/status'
import { bindShareButton } from './ui/share'

/** What the page exposes on `window.cometpad` for debugging and tests. */
export interface CometpadDebug {
  doc: Y.Doc
  awareness: Awareness
  provider: CometProvider
  view: EditorView
  /** The tab's channel: a {@link SharedChannel} (see `isLeader`) where the browser supports it. */
  channel: ChannelPort
}

declare global {
  interface Window {
    /** The running editor's parts; see {@link CometpadDebug}. */
    cometpad?: CometpadDebug
  }
}

/**
 * The document's address: the `<id>` of `/d/<id>`. Only the alphabet is
 * checked here; whether it names a document, and what it allows, is the
 * server's to say (see `ProviderStatus.notFound` and `readOnly`).
 */
function documentAddressFromLocation(): string | null {
  const match = /^\/d\/([A-Za-z0-9_-]{1,128})\/?$/.exec(location.pathname)
  return match?.[1] ?? null
}

function element<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id)
  if (!(found instanceof type)) throw new TypeError(`index.html must contain a ${type.name} with id "${id}"`)
  return found
}

function showFatal(message: string): void {
  const editor = document.getElementById('editor')
  const notice = document.createElement('p')
  notice.className = 'fatal'
  notice.setAttribute('role', 'alert')
  notice.textContent = message
  editor?.replaceChildren(notice)
  document.getElementById('toolbar')?.setAttribute('hidden', '')
}

function channelUrl(): string {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/comet/ws`
}

function start(): void {
  const docId = documentAddressFromLocation()
  if (docId === null) {
    showFatal('This link does not point to a Cometpad document. Check that it was copied whole.')
    return
  }

  const doc = new Y.Doc()
  // Keep a copy in IndexedDB so edits made offline survive a reload and are
  // sent once the server is reachable again.
  try {
    new IndexeddbPersistence(`cometpad:${docId}`, doc)
  } catch (error) {
    // No IndexedDB (some private modes): editing still works, only without the offline copy.
    console.warn('Cometpad: offline copy unavailable', error)
  }

  const identity = loadIdentity()
  const awareness = new Awareness(doc)
  awareness.setLocalStateField('user', { name: identity.name, color: identity.color })

  // One Comet channel per browser and server, shared by its tabs; a
  // private one where tabs cannot coordinate.
  const createChannel = (): Channel => new Channel({ url: channelUrl(), baseUrl: location.origin })
  const channel: ChannelPort = SharedChannel.isSupported() ? new SharedChannel({ name: `cometpad:${location.host}`, createChannel }) : createChannel()
  const provider = new CometProvider({ channel, docId, doc, awareness })
  // Registered after the provider's own pagehide listener, so its presence
  // removal goes out before the channel closes (a leader tab hands over here).
  window.addEventListener('pagehide', () => channel.close('page closed'))
  // A page restored from the back/forward cache has a closed channel: start afresh.
  window.addEventListener('pageshow', (event) => {
    if (event.persisted) location.reload()
  })

  const toolbar = element('toolbar', HTMLElement)
  const view = createEditorView({
    mount: element('editor', HTMLElement),
    doc,
    awareness,
    readOnly: provider.status.readOnly,
    plugins: [toolbarPlugin(toolbar)],
  })

  bindPresenceList({ container: element('presence', HTMLElement), awareness })
  bindNameEditor({
    nameInput: element('user-name', HTMLInputElement),
    colorInput: element('user-color', HTMLInputElement),
    awareness,
    identity,
  })
  bindStatus({
    statusElement: element('status', HTMLElement),
    saveElement: element('save-status', HTMLElement),
    provider,
  })
  bindShareButton({ button: element('share', HTMLButtonElement) })

  const onStatus = (status: ProviderStatus): void => {
    setReadOnly(view, status.readOnly || status.notFound)
    document.body.toggleAttribute('data-read-only', status.readOnly)
    if (status.notFound) {
      provider.off('status', onStatus)
      view.destroy()
      showFatal('Document not found. It may have been deleted, or the link was not copied whole.')
    }
  }
  onStatus(provider.status)
  provider.on('status', onStatus)

  window.addEventListener('beforeunload', (event) => {
    if (provider.status.unsavedCount === 0) return
    // Both calls are needed: preventDefault for current browsers, returnValue for older ones.
    event.preventDefault()
    event.returnValue = ''
  })

  window.cometpad = { doc, awareness, provider, view, channel }
  if (!provider.status.readOnly) view.focus()
}

start()
