// Interop helper: write a NEW flumelog-aligned-offset log with the npm package
// and print, as one JSON document, what was written (for the Rust test to read back).
// usage: node write.js <file> <blockSize> <count> <seed> [deleteEvery]
'use strict'
const fs = require('fs')
const FAO = require('flumelog-aligned-offset')
const compat = require('flumelog-aligned-offset/compat')

const [file, B, count, seed, deleteEvery = 0] =
  [process.argv[2], ...process.argv.slice(3, 7).map(Number)]
if (!file || !(B >= 16 && B <= 65536) || !(count >= 0) || !Number.isInteger(seed)) {
  console.error('usage: node write.js <file> <blockSize 16..65536> <count> <seed> [deleteEvery]')
  process.exit(2)
}
if (fs.existsSync(file)) { console.error('refusing to overwrite ' + file); process.exit(1) }

// mulberry32: tiny deterministic PRNG, so the same seed always gives the same log
let s = seed >>> 0
function rand () {
  s = (s + 0x6d2b79f5) >>> 0
  let t = s
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1)) // inclusive range

const MAX = B - 10 // largest payload a block holds: pos + L + 4 <= B - 6 with pos = 0
const TEXT = ['a', 'z', ' ', '"', '\\', '\n', 'é', 'ö', '日', '本', '\u2028', '😀', '👩‍💻']

// One payload; `pos` (offset inside the current block) lets some sizes hit block edges.
function payload (i, pos) {
  const room = B - 10 - pos // a payload of exactly `room` bytes still fits this block
  const kind = int(0, 9)
  if (kind === 0) return json(i)
  if (kind === 1) return bytes(MAX) // the largest record possible
  if (kind === 2) return bytes(Math.min(MAX, Math.max(1, room + 1))) // 1 byte too many: new block
  if (kind === 3 && room >= 1) return bytes(room) // fills the block exactly up to the EOB
  if (kind <= 5) return bytes(int(1, Math.min(MAX, 16))) // tiny
  return bytes(int(1, MAX)) // anything
}
function bytes (n) {
  const b = Buffer.alloc(n)
  for (let k = 0; k < n; k++) b[k] = int(0, 255)
  if (b.every(x => x === 0)) b[0] = 1 // all zeros would read back as "deleted"
  return b
}
// UTF-8 JSON text; a TEXT entry is at most 11 bytes (the ZWJ emoji), so cap the count
function json (i) {
  const n = int(0, Math.max(0, Math.floor((MAX - 40) / 11)))
  let str = ''
  for (let k = 0; k < n; k++) str += TEXT[int(0, TEXT.length - 1)]
  const b = Buffer.from(JSON.stringify({ i, s: str }))
  return b.length <= MAX ? b : b.subarray(0, MAX) // (only for tiny blocks)
}

// Wait until every appended byte is on disk. onDrain fires after the NEXT write,
// not after all pending ones, so re-check appendState and wait again if needed.
function drain (log, cb) {
  log.onDrain(() => {
    const st = log.appendState
    if (st.offset > st.written || st.writing > st.written) drain(log, cb)
    else cb()
  })
}

// Read a compat pull-stream to the end (pull-looper makes sync callbacks stack-safe).
function collect (read, cb) {
  const out = []
  read(null, function next (end, data) {
    if (end === true) return cb(null, out)
    if (end) return cb(end)
    out.push(data)
    read(null, next)
  })
}

const log = compat(FAO(file, { blockSize: B })) // no codec: raw Buffers stored as given
// Start once since is set (the last step of loading): appends made from onReady
// would run before the loader's onWrite(-1), which resets since to -1.
log.since.once(() => {
  const records = []
  for (let i = 0; i < count; i++) {
    const value = payload(i, log.appendState.offset % B)
    // sync=false: cb gets the offset append computed for THIS record (sync=true
    // would report since.value at drain time, which can belong to a later record)
    log.append(value, false, (err, seq) => {
      if (err) throw err
      records.push({ offset: null, appendSeq: seq, value, deleted: false })
    })
  }
  drain(log, () => {
    const since = log.since.value
    // the real offsets are those stream reports (append's seq is wrong for a record
    // that opens a new block); stream before deleting, since it skips deleted ones
    collect(log.stream({ seqs: true, values: true }), (err, got) => {
      if (err) throw err
      if (got.length !== count) throw new Error('stream gave ' + got.length + ' records')
      got.forEach((r, i) => {
        if (!r.value.equals(records[i].value)) throw new Error('stream mismatch at ' + i)
        records[i].offset = r.seq
      })
      // never delete in the last (partial) block: JS del would pad the file to a
      // whole block without EOB/pointer and corrupt it
      const lastBlock = count ? records[count - 1].offset - records[count - 1].offset % B : 0
      const victims = deleteEvery > 0
        ? records.filter((r, i) => i % deleteEvery === deleteEvery - 1 && r.offset < lastBlock) : []
      // one at a time: concurrent dels in one block each write back their own copy of it
      ;(function delNext (k) {
        if (k < victims.length) {
          return log.del(victims[k].offset, (err) => {
            if (err) throw err
            victims[k].deleted = true
            delNext(k + 1)
          })
        }
        log.close(() => {
          printed = true
          process.stdout.write(JSON.stringify({
            blockSize: B,
            records: records.map(r => ({
              offset: r.offset, appendSeq: r.appendSeq, hex: r.value.toString('hex'), deleted: r.deleted
            })),
            since
          }) + '\n')
        })
      })(0)
    })
  })
})
// the process also ends if the package silently stalls: don't let that pass as success
let printed = false
process.on('exit', () => { if (!printed) { console.error('write.js: no result'); process.exitCode = 1 } })
