// Writes a NEW async-append-only-log (npm 4.3.10) with deterministic records, so
// the Rust side can check it reads exactly what JS wrote.
//   usage: node write.js <file> <blockSize> <count> <seed> [deleteEvery]
// stdout: {"blockSize", "records": [{"offset", "hex", "deleted"}], "since", "stats"}
'use strict'
const fs = require('fs')
const AAOL = require('async-append-only-log')

const [file, bsArg, countArg, seedArg, delArg] = process.argv.slice(2)
const B = Number(bsArg)
const count = Number(countArg)
const deleteEvery = Number(delArg || 0)
if (!file || !(B >= 5 && B <= 65536) || !(count >= 0) || seedArg === undefined) {
  console.error('usage: node write.js <file> <blockSize 5..65536> <count> <seed> [deleteEvery]')
  process.exit(2)
}
// AAOL would silently append to an existing log; we want a fresh one.
if (fs.existsSync(file)) fail(`${file} already exists`)

function fail(msg) {
  console.error('write.js: ' + msg)
  process.exit(1)
}

// mulberry32: tiny seeded PRNG, so a (seed, blockSize, count) triple always gives the same log.
let state = Number(seedArg) >>> 0
function rand() {
  state = (state + 0x6d2b79f5) >>> 0
  let t = state
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const randInt = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1)) // inclusive

function binary(len) {
  const buf = Buffer.alloc(len)
  for (let i = 0; i < len; i++) buf[i] = randInt(0, 255)
  // An all-zero payload would read back as "deleted", so never produce one.
  if (buf.every((b) => b === 0)) buf[len - 1] = 1
  return buf
}

// JSON with multi-byte UTF-8 (accents, CJK, RTL, emoji with ZWJ, U+2028, escapes).
const PIECES = ['a', 'z', ' ', 'é', 'ß', '€', '日本', 'ع', '👩‍💻', '\u2028', '"', '\\', '\n']
function json(i, maxLen) {
  let text = ''
  const n = randInt(0, 40)
  for (let k = 0; k < n; k++) text += PIECES[randInt(0, PIECES.length - 1)]
  const buf = Buffer.from(JSON.stringify({ i, text }))
  return buf.length <= maxLen ? buf : binary(randInt(1, maxLen))
}

// Picks the next payload. pos = where the next record would start in the current
// block; the "fit" kinds target the block boundary exactly (fits / one byte too big).
function payload(i, pos) {
  const max = B - 4 // largest record AAOL accepts: 2 (length) + L + 2 (end-of-block) <= B
  const kind = i < 6 ? i : [0, 0, 0, 1, 1, 1, 2, 2, 3, 4, 5][randInt(0, 10)]
  switch (kind) {
    case 0: return json(i, max)
    case 1: return binary(i === 1 ? 1 : randInt(1, Math.min(64, max))) // incl. a 1-byte record
    case 2: return binary(randInt(1, max))
    case 3: return binary(max) // exactly blockSize-4
    case 4: { const l = B - pos - 4; return binary(l >= 1 ? l : randInt(1, max)) } // exact fit
    case 5: { const l = B - pos - 3; return binary(l >= 1 && l <= max ? l : randInt(1, max)) } // 1 too big: new block
  }
}

const log = AAOL(file, { blockSize: B, writeTimeout: 250 })
const records = []
let pos = 0
log.since.once(appendAll) // since is set once the log has loaded

// Appends one by one. After load, append() calls back synchronously, so a plain loop
// keeps `pos` current (and avoids deep recursion for big counts).
function appendAll() {
  for (let i = 0; i < count; i++) {
    const buf = payload(i, pos)
    log.append(buf, (err, offset) => {
      if (err) fail(`append #${i}: ${err.message}`)
      records.push({ offset, hex: buf.toString('hex'), deleted: false })
      pos = (offset % B) + 2 + buf.length
    })
    if (records.length !== i + 1) fail('append did not call back synchronously')
  }
  log.onDrain(drained)
}

function drained() {
  // since only moves after the block was written and fsynced; it must now be the last offset.
  const last = records.length ? records[records.length - 1].offset : -1
  if (log.since.value !== last) fail(`since ${log.since.value} != last offset ${last} after onDrain`)
  deleteSome()
}

// Deletes every deleteEvery-th record, then waits until the zeroed blocks and .stats are on disk.
function deleteSome() {
  const doomed = records.filter((r, i) => deleteEvery > 0 && i % deleteEvery === deleteEvery - 1)
  let pending = doomed.length
  if (pending === 0) return log.onDeletesFlushed(finish)
  for (const r of doomed) {
    log.del(r.offset, (err) => {
      if (err) fail(`del ${r.offset}: ${err.message}`)
      r.deleted = true
      if (--pending === 0) log.onDeletesFlushed(finish)
    })
  }
}

function finish(err) {
  if (err) fail('flushing deletes: ' + err.message)
  log.stats((err, stats) => {
    if (err) fail('stats: ' + err.message)
    const since = log.since.value
    log.close((err) => {
      if (err) fail('close: ' + err.message)
      process.stdout.write(JSON.stringify({ blockSize: B, records, since, stats }) + '\n')
    })
  })
}
