// Builds an ssb-db2-shaped log with the real JS packages: <dir>/db2/log.bipf is an
// async-append-only-log (64 KiB blocks) whose records are bipf({key, value, timestamp}).
//   usage: node make-log.js <dir> <count> [seed=1]
// stdout: one JSON line {count, since, authors, counts, first_author_messages, last_key}
// Deterministic for a given (count, seed). Hashes and signatures are random; they don't verify.
'use strict'
const fs = require('fs')
const path = require('path')
const AAOL = require('async-append-only-log')
const bipf = require('bipf')

function fail(msg) {
  console.error('make-log.js: ' + msg)
  process.exit(1)
}

const [dir, countArg, seedArg = '1'] = process.argv.slice(2)
const count = Number(countArg)
const seed = Number(seedArg)
if (!dir || !Number.isInteger(count) || count < 0 || !Number.isInteger(seed)) {
  console.error('usage: node make-log.js <dir> <count> [seed=1]')
  process.exit(2)
}
const file = path.join(dir, 'db2', 'log.bipf')
// AAOL would happily append to an existing log; we only ever build fresh ones.
if (fs.existsSync(file)) fail(`${file} already exists`)
fs.mkdirSync(path.dirname(file), { recursive: true })

// mulberry32: tiny seeded PRNG, returns floats in [0, 1).
function mulberry32(a) {
  return function () {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const rand = mulberry32(seed)
const int = (n) => Math.floor(rand() * n) // 0..n-1
const pick = (arr) => arr[int(arr.length)]
// n random bytes as standard base64: 32 bytes -> 43 chars + "=", 64 bytes -> 86 chars + "==".
const b64 = (n) => Buffer.from(Array.from({ length: n }, () => int(256))).toString('base64')

const WORDS = ('scuttlebutt gossip feed pub peer offline sail boat island harbour ' +
  'tide moss garden bread coffee rain cable solar radio mesh crypto log append ' +
  'block tangle thread reply hello world friend follow invite room onion').split(' ')
const words = (n) => Array.from({ length: n }, () => pick(WORDS)).join(' ')

// 20 authors, each with its feed state (last key, sequence, claimed timestamp).
const authors = Array.from({ length: 20 }, () => '@' + b64(32) + '.ed25519')
const feeds = new Map(authors.map((id) => [id, { prev: null, seq: 0, ts: 0 }]))

const counts = { post: 0, vote: 0, contact: 0, about: 0 }
const keys = [] // every key so far, for votes to link to
let received = 1600000000000 // global received time (ms), strictly increasing

function makeContent(author) {
  const r = rand()
  // A vote needs an earlier message; the very first one becomes a post instead.
  if (r < 0.45 || (r < 0.8 && keys.length === 0)) {
    return { type: 'post', text: words(3 + int(18)) }
  } else if (r < 0.8) {
    return { type: 'vote', vote: { link: pick(keys), value: 1, expression: 'Like' } }
  } else if (r < 0.95) {
    let other
    do other = pick(authors); while (other === author)
    return { type: 'contact', contact: other, following: true }
  } else {
    return { type: 'about', about: author, name: pick(WORDS) + int(100) }
  }
}

const log = AAOL(file, { blockSize: 64 * 1024 })
let lastOffset = -1
let lastKey = null

for (let i = 0; i < count; i++) {
  const author = pick(authors)
  const feed = feeds.get(author)
  received += 1 + int(60000)
  // Claimed time: a bit before it was received, but strictly increasing per feed.
  const claimed = Math.max(feed.ts + 1, received - int(5000))
  const content = makeContent(author)
  const key = '%' + b64(32) + '.sha256'
  const value = {
    previous: feed.prev,
    author,
    sequence: feed.seq + 1,
    timestamp: claimed,
    hash: 'sha256',
    content,
    signature: b64(64) + '.sig.ed25519',
  }
  Object.assign(feed, { prev: key, seq: feed.seq + 1, ts: claimed })
  counts[content.type]++
  keys.push(key)
  lastKey = key
  // Appends made before the log has loaded are queued in order; the callback gives
  // the record's offset. Blocks are written to disk later (debounced, fsynced).
  log.append(bipf.allocAndEncode({ key, value, timestamp: received }), (err, offset) => {
    if (err) fail('append: ' + err.message)
    lastOffset = offset
  })
}

// onDrain fires once every pending block is written and fsynced.
log.onDrain(() => {
  if (log.since.value !== lastOffset) {
    fail(`since is ${log.since.value}, expected ${lastOffset}`)
  }
  log.close((err) => {
    if (err) fail('close: ' + err.message)
    console.log(JSON.stringify({
      count,
      since: lastOffset,
      authors,
      counts,
      first_author_messages: feeds.get(authors[0]).seq,
      last_key: lastKey,
    }))
  })
})
