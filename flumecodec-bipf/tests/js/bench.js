// The JS side of `cargo bench -p flumecodec-bipf`: npm bipf 1.9.0 on the same messages.
//   node bench.js <messages.jsonl> <reps>
// Prints one JSON line: the best time (ms) of each operation over all messages, and what each
// consumed (the Rust side must agree).
const fs = require('fs')
const bipf = require('bipf')

const [file, repsArg] = process.argv.slice(2)
const reps = Number(repsArg) || 5
const messages = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l))
const encoded = messages.map((m) => bipf.allocAndEncode(m))
const seekType = bipf.createSeekPath(['value', 'content', 'type'])

function best(fn) {
  let min = Infinity
  let out
  for (let r = 0; r < reps; r++) {
    const start = process.hrtime.bigint()
    out = fn()
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    if (ms < min) min = ms
  }
  return [min, out]
}

// Encode: every message, summing the encoded lengths.
const [encode, encodeSum] = best(() => {
  let sum = 0
  for (const m of messages) sum += bipf.allocAndEncode(m).length
  return sum
})
// Decode: every record whole, summing value.sequence.
const [decode, decodeSum] = best(() => {
  let sum = 0
  for (const b of encoded) sum += bipf.decode(b, 0).value.sequence
  return sum
})
// Seek: value.content.type of every record, read as a string, summing the lengths.
const [seek, seekSum] = best(() => {
  let sum = 0
  for (const b of encoded) {
    const p = seekType(b, 0)
    if (p !== -1) sum += bipf.decode(b, p).length
  }
  return sum
})
process.stdout.write(JSON.stringify({ encode, encodeSum, decode, decodeSum, seek, seekSum }) + '\n')
