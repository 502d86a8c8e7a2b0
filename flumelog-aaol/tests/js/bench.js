// The JS side of `cargo bench -p flumelog-aaol`: npm async-append-only-log 4.3.10 on the same
// records.   usage: node bench.js <records.bin> <dir> <gets.json>
// records.bin: records as [u32 LE length][bytes]; gets.json: indexes of records to get.
// Prints one JSON line: append_ms (every record appended, until all are on disk), stream_ms
// (every record with its value), get_ms (the gets, one after another), and the sums of the
// lengths each read (the Rust side must agree).
'use strict'
const fs = require('fs')
const path = require('path')
const AAOL = require('async-append-only-log')

const [recordsFile, dir, getsFile] = process.argv.slice(2)
const raw = fs.readFileSync(recordsFile)
const records = []
for (let p = 0; p < raw.length; ) {
  const len = raw.readUInt32LE(p)
  records.push(raw.subarray(p + 4, p + 4 + len))
  p += 4 + len
}
const gets = JSON.parse(fs.readFileSync(getsFile, 'utf8'))
const file = path.join(dir, 'js.bipf')
if (fs.existsSync(file)) fs.unlinkSync(file)

const now = () => Number(process.hrtime.bigint()) / 1e6
const log = AAOL(file, { blockSize: 65536 })
const offsets = []
const out = {}

log.since.once(() => {
  const start = now()
  for (const r of records) log.append(r, (err, offset) => offsets.push(offset))
  // Appends call back at once; the bytes reach the file later: wait until they have.
  log.onDrain(() => {
    out.append_ms = now() - start
    stream()
  })
})

function stream() {
  const start = now()
  let sum = 0
  log.stream({ offsets: false, values: true }).pipe({
    paused: false,
    ended: false,
    write(value) { sum += value.length },
    end() {
      out.stream_ms = now() - start
      out.stream_sum = sum
      getAll()
    },
  })
}

function getAll() {
  const start = now()
  let sum = 0
  let i = 0
  const next = () => {
    if (i === gets.length) {
      out.get_ms = now() - start
      out.get_sum = sum
      return log.close(() => process.stdout.write(JSON.stringify(out) + '\n'))
    }
    log.get(offsets[gets[i++]], (err, value) => {
      if (err) throw err
      sum += value.length
      // get often calls back synchronously: step out of the stack now and then.
      if (i % 1000 === 0) setImmediate(next)
      else next()
    })
  }
  next()
}
