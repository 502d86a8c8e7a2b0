// Reads an existing async-append-only-log (npm 4.3.10), e.g. one written by Rust,
// and reports every record, so the Rust side can check JS sees what it wrote.
//   usage: node read.js <file> <blockSize>
// stdout: {"records": [{"offset", "hex" (null = deleted)}], "since"}
// Never appends. Note: opening may still rewrite a corrupt last block (AAOL's repair).
'use strict'
const fs = require('fs')
const AAOL = require('async-append-only-log')

const [file, bsArg] = process.argv.slice(2)
const B = Number(bsArg)
if (!file || !(B >= 5 && B <= 65536)) {
  console.error('usage: node read.js <file> <blockSize 5..65536>')
  process.exit(2)
}
// AAOL treats a missing file as an empty log; for a test that is an error.
if (!fs.existsSync(file)) fail(`${file} does not exist`)

function fail(msg) {
  console.error('read.js: ' + msg)
  process.exit(1)
}

const log = AAOL(file, { blockSize: B })
const records = []

// since is null until the last block has been scanned on open.
log.since.once(() => {
  // A minimal push-stream sink; deleted records arrive as {offset, value: null}.
  log.stream({ offsets: true, values: true }).pipe({
    paused: false,
    ended: false,
    write({ offset, value }) {
      records.push({ offset, hex: value === null ? null : value.toString('hex') })
    },
    end(err) {
      if (err) fail('stream: ' + err.message)
      checkGets()
    },
  })
})

// get(offset) must agree with the stream: same bytes, or ERR_AAOL_DELETED_RECORD.
// Issued all at once with a counter (get is often synchronous; no deep recursion).
function checkGets() {
  let pending = records.length
  if (pending === 0) return finish()
  for (const { offset, hex } of records) {
    log.get(offset, (err, value) => {
      if (hex === null) {
        if (!err || err.code !== 'ERR_AAOL_DELETED_RECORD')
          fail(`get(${offset}) of a deleted record gave ${err ? err.code : 'a value'}`)
      } else if (err) {
        fail(`get(${offset}): ${err.message}`)
      } else if (value.toString('hex') !== hex) {
        fail(`get(${offset}) differs from the streamed value`)
      }
      if (--pending === 0) finish()
    })
  }
}

function finish() {
  const since = log.since.value
  log.close((err) => {
    if (err) fail('close: ' + err.message)
    process.stdout.write(JSON.stringify({ records, since }) + '\n')
  })
}
