/**
 * Which documents exist and what a link to one allows. A link's address is
 * resolved here before any room is loaded, so a guessed or malformed id
 * never creates anything.
 *
 * Every document has two addresses, both 22 random URL-safe characters
 * (132 bits) drawn independently, so neither can be derived from the other:
 *
 *   - its edit id, which is also its document id (`/d/<id>`): read and write;
 *   - its view id (`/v/<id>`): read only.
 *
 * The mapping is stored durably as store metadata:
 *
 *     view!<viewId>     → docId
 *     doc-view!<docId>  → viewId
 */
import * as Y from 'yjs'
import { newDocId, parseDocId, randomId, type DocId } from '../../common/ids'
import type { DocStore } from '../storage/doc-store'

/** What an address grants: an edit id grants writing and knows the view id; a view id grants reading only. */
export type DocAccess =
  | { docId: DocId; canWrite: true; viewId: string }
  | { docId: DocId; canWrite: false }

/** A new document's two addresses. */
export interface CreatedDoc {
  /** The document id, which is also its edit address. */
  docId: DocId
  /** Its view-only address. */
  viewId: string
}

/** Options for {@link DocDirectory}. */
export interface DocDirectoryOptions {
  /** How many resolved addresses to remember, so repeated joins cost no storage reads. @default 10000 */
  cacheSize?: number
}

const viewKey = (viewId: string): string => `view!${viewId}`
const docViewKey = (docId: DocId): string => `doc-view!${docId}`

/** Creates documents and resolves link addresses. */
export class DocDirectory {
  private readonly cacheSize: number
  /** Resolved addresses, least recently used first (Map keeps insertion order). Only hits are cached. */
  private readonly cache = new Map<string, DocAccess>()
  /** View ids being given to documents created before view ids existed, so concurrent resolves agree. */
  private readonly assigning = new Map<DocId, Promise<string>>()

  constructor(
    private readonly store: DocStore,
    options: DocDirectoryOptions = {},
  ) {
    this.cacheSize = options.cacheSize ?? 10_000
  }

  /**
   * Create a new, empty document with a fresh view id and make both durable,
   * so its links work from the first request on.
   */
  async create(): Promise<CreatedDoc> {
    const docId = newDocId()
    await this.store.append(docId, Y.encodeStateAsUpdate(new Y.Doc()))
    const viewId = await this.assignViewId(docId)
    return { docId, viewId }
  }

  /**
   * What `address` grants, or null when it is malformed or names no document.
   * A malformed address is refused without touching the store.
   */
  async resolve(address: string): Promise<DocAccess | null> {
    const id = parseDocId(address)
    if (!id) return null
    const cached = this.cache.get(id)
    if (cached) {
      this.cache.delete(id)
      this.cache.set(id, cached)
      return cached
    }
    const access = await this.lookup(id)
    if (access) this.remember(id, access)
    return access
  }

  private async lookup(id: DocId): Promise<DocAccess | null> {
    // An edit id of a document created with a view id: one read.
    const viewId = await this.store.getMeta(docViewKey(id))
    if (viewId !== null) return { docId: id, canWrite: true, viewId }
    const viewOf = await this.store.getMeta(viewKey(id))
    if (viewOf !== null) {
      const docId = parseDocId(viewOf)
      return docId ? { docId, canWrite: false } : null
    }
    // A document stored before view ids existed gets one now.
    if (await this.store.has(id)) return { docId: id, canWrite: true, viewId: await this.assignViewId(id) }
    return null
  }

  /**
   * Give `docId` a view id. `view!` is written before `doc-view!`, so an edit
   * id never reports a view id that does not resolve; a crash in between
   * leaves only an unreachable `view!` entry, and a new view id is assigned.
   */
  private assignViewId(docId: DocId): Promise<string> {
    let assigning = this.assigning.get(docId)
    if (!assigning) {
      assigning = (async () => {
        const viewId = randomId(22)
        await this.store.putMeta(viewKey(viewId), docId)
        await this.store.putMeta(docViewKey(docId), viewId)
        return viewId
      })().finally(() => this.assigning.delete(docId))
      this.assigning.set(docId, assigning)
    }
    return assigning
  }

  private remember(id: string, access: DocAccess): void {
    this.cache.set(id, access)
    if (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next()
      if (!oldest.done) this.cache.delete(oldest.value)
    }
  }
}
