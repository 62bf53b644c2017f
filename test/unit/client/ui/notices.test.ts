import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import type { ProviderStatus } from '../../../../client/sync/provider'
import { describeNotices } from '../../../../client/ui/notices'
import { describeSave } from '../../../../client/ui/status'

const base: ProviderStatus = {
  connection: 'connected',
  transport: 'websocket',
  synced: true,
  unsavedCount: 0,
  saveError: null,
  readOnly: false,
  notFound: false,
  sizeLimitReached: false,
  serverBusy: false,
}

describe('describeNotices', () => {
  it('says nothing while all is well', () => {
    assert.deepEqual(describeNotices(base), [])
  })

  it('says the document reached its size limit and the last change was not saved', () => {
    const notices = describeNotices({ ...base, sizeLimitReached: true })
    assert.deepEqual(notices.map((n) => n.kind), ['size-limit'])
    assert.match(notices[0]!.text, /size limit; your last change was not saved/)
  })

  it('says the server is busy and that it is retrying, after the size notice when both hold', () => {
    const notices = describeNotices({ ...base, sizeLimitReached: true, serverBusy: true })
    assert.deepEqual(notices.map((n) => n.kind), ['size-limit', 'server-busy'])
    assert.match(notices[1]!.text, /busy.*retrying/)
  })
})

describe('describeSave', () => {
  it('names the size limit for changes the server will not save', () => {
    assert.equal(describeSave({ ...base, unsavedCount: 2, sizeLimitReached: true }), 'Not saved — size limit')
    assert.equal(describeSave({ ...base, unsavedCount: 2 }), 'Saving…')
    assert.equal(describeSave({ ...base, sizeLimitReached: true }), 'All changes saved')
  })
})
