// The JS side of `cargo bench -p flumelog-aligned-offset`: npm flumelog-aligned-offset 1.1.4
// on the same records.   usage: node bench.js <records.bin> <dir> <gets.json>
// records.bin: records as [u32 LE length][bytes]; gets.json: indexes of records to get.
// Prints one JSON line: append_ms (every record appended, until all are written), stream_ms
// (every record with its value), get_ms (the gets, one after another) and the sums of the
// lengths each read (the Rust side must agree).
'use strict'
const fs = require('fs')
const path = require('path')
const FAO = require('flumelog-aligned-offset')
const compat = require('flumelog-aligned-offset/compat')

const [recordsFile, dir, getsFile] = process.argv.slice(2)
const raw = fs.readFileSync(recordsFile)
const records = []
for (let p = 0; p < raw.length; ) {
  const len = raw.readUInt32LE(p)
  records.push(raw.subarray(p + 4, p + 4 + len))
  p += 4 + len
}
const gets = JSON.parse(fs.readFileSync(getsFile, 'utf8'))
const file = path.join(dir, 'js.aligned')
if (fs.existsSync(file)) fs.unlinkSync(file)
const now = () => Number(process.hrtime.bigint()) / 1e6
const log = compat(FAO(file, { blockSize: 65536 }))
const out = {}

// onDrain fires after the next write only: wait until appendState shows all written.
function drain (cb) {
  log.onDrain(() => {
    const st = log.appendState
    if (st.offset > st.written || st.writing > st.written) drain(cb)
    else cb()
  })
}

log.since.once(() => {
  const start = now()
  for (const r of records) log.append(r, false, (err) => { if (err) throw err })
  drain(() => {
    out.append_ms = now() - start
    stream()
  })
})

// The real seqs come from the stream (append reports some of them wrongly).
function stream () {
  const start = now()
  let sum = 0
  const seqs = []
  const read = log.stream({ seqs: true, values: true })
  read(null, function next (end, data) {
    if (end === true) {
      out.stream_ms = now() - start
      out.stream_sum = sum
      return getAll(seqs)
    }
    if (end) throw end
    sum += data.value.length
    seqs.push(data.seq)
    read(null, next)
  })
}

function getAll (seqs) {
  const start = now()
  let sum = 0
  let i = 0
  const next = () => {
    if (i === gets.length) {
      out.get_ms = now() - start
      out.get_sum = sum
      return log.close(() => process.stdout.write(JSON.stringify(out) + '\n'))
    }
    log.get(seqs[gets[i++]], (err, value) => {
      if (err) throw err
      sum += value.length
      if (i % 100 === 0) setImmediate(next)
      else next()
    })
  }
  next()
}
