// Interop helper: read an EXISTING flumelog-aligned-offset log (e.g. written by Rust)
// with the npm package and print, as one JSON document, every record it sees.
// usage: node read.js <file> <blockSize>
'use strict'
const fs = require('fs')
const FAO = require('flumelog-aligned-offset')
const compat = require('flumelog-aligned-offset/compat')

const file = process.argv[2]
const B = Number(process.argv[3])
if (!file || !(B >= 16 && B <= 65536)) {
  console.error('usage: node read.js <file> <blockSize 16..65536>')
  process.exit(2)
}
// the package would silently create a missing file; we only read existing logs
if (!fs.existsSync(file)) { console.error('no such file: ' + file); process.exit(1) }

function fail (msg) { console.error(msg); process.exit(1) }

// compat: since becomes an observable set on open, stream becomes a pull-stream
const log = compat(FAO(file, { blockSize: B })) // no codec: values are raw Buffers
const read = log.stream({ seqs: true, values: true }) // deleted records are skipped
const records = []
read(null, function next (end, data) {
  if (end && end !== true) fail('stream error: ' + (end.stack || end))
  if (end) return check(0)
  // values are views of the cached block buffer: copy them out right away
  records.push({ offset: data.seq, hex: data.value.toString('hex') })
  read(null, next) // pull-looper keeps this sync recursion off the stack
})

// get() each streamed offset, one at a time, and compare with what stream gave.
// get calls back synchronously for a cached block, so loop instead of recursing.
function check (k) {
  for (;;) {
    if (k === records.length) return done()
    const r = records[k]
    let waiting = true, sync = false
    log.get(r.offset, (err, value) => {
      if (err) fail('get(' + r.offset + '): ' + err.message)
      if (value.toString('hex') !== r.hex) fail('get(' + r.offset + ') differs from stream')
      if (waiting) sync = true
      else check(k + 1)
    })
    waiting = false
    if (!sync) return
    k++
  }
}

// since is computed on open from the file's tail, not from the stream. For an empty
// file the stream can end before it is set, so then wait for it. (It can be NaN or
// garbage for a file padded to a whole block by JS del; NaN prints as null.)
function done () {
  const v = log.since.value
  if (v !== undefined) finish(v)
  else log.since.once(finish)
}
let printed = false
function finish (since) {
  log.close(() => {
    printed = true
    process.stdout.write(JSON.stringify({ records, since }) + '\n')
  })
}
// the process also ends if the package silently stalls: don't let that pass as success
process.on('exit', () => { if (!printed) { console.error('read.js: no result'); process.exitCode = 1 } })
