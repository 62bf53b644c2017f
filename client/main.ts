/**
 * The browser entry point: finds the document in the address (`/d/<id>`
 * to edit, `/v/<id>` to view only),
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
import { bindNotices } from './ui/notices'

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

/** What the address names: a document and whether the page offers editing. */
interface PageAddress {
  /** The `<id>` of the link, sent to the server as the document's address. */
  docId: string
  /** `/v/<id>` opens view only; `/d/<id>` opens for editing. */
  mode: 'edit' | 'view'
}

/**
 * The document's address: the `<id>` of `/d/<id>` or `/v/<id>`. Only the
 * alphabet is checked here; whether it names a document, and what it
 * allows, is the server's to say and enforce (see `ProviderStatus.notFound`
 * and `readOnly`): a view page only spares the reader a refused edit.
 */
function documentAddressFromLocation(): PageAddress | null {
  const match = /^\/([dv])\/([A-Za-z0-9_-]{1,128})\/?$/.exec(location.pathname)
  const docId = match?.[2]
  if (!docId) return null
  return { docId, mode: match[1] === 'v' ? 'view' : 'edit' }
}

/** The "View only" badge in the header, next to the status. */
function showViewOnlyBadge(): void {
  const badge = document.createElement('span')
  badge.id = 'view-only-badge'
  badge.className = 'view-only-badge'
  badge.textContent = 'View only'
  badge.title = 'This link lets you read the document, not change it'
  const indicators = document.querySelector('.indicators')
  if (indicators) indicators.prepend(badge)
  else document.body.prepend(badge)
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
  const address = documentAddressFromLocation()
  if (address === null) {
    showFatal('This link does not point to a Cometpad document. Check that it was copied whole.')
    return
  }
  const { docId, mode } = address
  const viewOnly = mode === 'view'
  if (viewOnly) {
    showViewOnlyBadge()
    document.getElementById('toolbar')?.setAttribute('hidden', '')
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
  const provider = new CometProvider({ channel, docId, doc, awareness, readOnly: viewOnly })
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
  bindShareButton({ button: element('share', HTMLButtonElement), mode })
  bindNotices({ container: element('notices', HTMLElement), provider })

  const onStatus = (status: ProviderStatus): void => {
    setReadOnly(view, viewOnly || status.readOnly || status.notFound)
    document.body.toggleAttribute('data-read-only', viewOnly || status.readOnly)
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
