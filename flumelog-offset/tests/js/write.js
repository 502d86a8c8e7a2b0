'use strict'
// Usage: node write.js <file> <input-file> [32|48|53]
// <input-file>: one record per line, payload as hex (a trailing newline at the
// end of the file is ignored; an empty line is an empty payload).
// Opens (creating if needed) a flumelog-offset 3.4.4 log and appends the
// records one at a time, waiting for each callback, printing {"seq":N} each.
const fs = require('fs')
const OffsetLog = require('flumelog-offset')
const { rawCodec, parseWidth, fail } = require('./common')

function main () {
  const args = process.argv.slice(2)
  if (args.length < 2 || args.length > 3) {
    throw new Error('usage: node write.js <file> <input-file> [32|48|53]')
  }
  const file = args[0]
  const width = parseWidth(args[2])

  let lines = fs.readFileSync(args[1], 'utf8').split('\n')
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
  const payloads = lines.map(function (line, i) {
    line = line.replace(/\r$/, '')
    if (!/^(?:[0-9a-fA-F]{2})*$/.test(line)) {
      throw new Error('line ' + (i + 1) + ' of ' + args[1] + ' is not valid hex')
    }
    return Buffer.from(line, 'hex')
  })

  // Default flags ('r+'), as an application would use.
  const log = OffsetLog(file, { codec: rawCodec, offsetCodec: width })

  let i = 0
  ;(function next () {
    if (i >= payloads.length) {
      // Every callback fires after fs.write has completed, so all data is in
      // the file (page cache; flumelog-offset never fsyncs). There is no close.
      process.exitCode = 0
      return
    }
    // A single Buffer (not an array) is one record. Only one append is in
    // flight at a time, so the callback's seq is this record's own seq.
    log.append(payloads[i], function (err, seq) {
      if (err) return fail(err)
      process.stdout.write(JSON.stringify({ seq: seq }) + '\n')
      i++
      next()
    })
  })()
}

try { main() } catch (err) { fail(err) }
