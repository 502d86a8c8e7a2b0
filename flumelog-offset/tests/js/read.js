'use strict'
// Usage: node read.js <file> [32|48|53]
// Streams every (non-deleted) record of a flumelog-offset 3.4.4 log, checks
// that get(seq) returns the same bytes, and prints one JSON line per record:
//   {"seq":N,"len":L,"sha256":"<hex of payload>"}
// followed by {"since":N} (-1 for an empty log).
const fs = require('fs')
const crypto = require('crypto')
const pull = require('pull-stream')
const OffsetLog = require('flumelog-offset')
const { rawCodec, parseWidth, fail } = require('./common')

function main () {
  const args = process.argv.slice(2)
  if (args.length < 1 || args.length > 2) {
    throw new Error('usage: node read.js <file> [32|48|53]')
  }
  const file = args[0]
  const width = parseWidth(args[1])

  // flumelog-offset silently creates a missing file; refuse instead.
  if (!fs.statSync(file).isFile()) throw new Error('not a regular file: ' + file)
  // aligned-block-file first opens the file with 'a' (ignoring the error) and
  // then calls fs.close(undefined), which throws a TypeError on Node 20 when
  // the file is not writable. Give a clear message instead.
  fs.accessSync(file, fs.constants.R_OK | fs.constants.W_OK)

  // flags 'r': never modify the input. (If recovery wants to truncate a torn
  // tail, the ftruncate fails and the library ignores that error; `since` is
  // still computed from the recovered end.)
  const log = OffsetLog(file, { codec: rawCodec, offsetCodec: width, flags: 'r' })

  log.since.once(function (since) {
    pull(
      log.stream({ seqs: true, values: true }),
      pull.asyncMap(function (item, cb) {
        const seq = item.seq
        const value = item.value
        if (!Buffer.isBuffer(value)) {
          return cb(new Error('stream value at seq ' + seq + ' is not a Buffer'))
        }
        log.get(seq, function (err, got) {
          if (err) return cb(new Error('get(' + seq + ') failed: ' + err.message))
          if (!Buffer.isBuffer(got) || !got.equals(value)) {
            return cb(new Error('get(' + seq + ') returned different bytes than the stream'))
          }
          cb(null, {
            seq: seq,
            len: value.length,
            sha256: crypto.createHash('sha256').update(value).digest('hex')
          })
        })
      }),
      pull.drain(function (rec) {
        process.stdout.write(JSON.stringify(rec) + '\n')
      }, function (err) {
        if (err) return fail(err)
        // re-read since: it cannot change (nothing appends), but be exact.
        process.stdout.write(JSON.stringify({ since: log.since.value }) + '\n')
        process.exitCode = 0
      })
    )
  })
}

try { main() } catch (err) { fail(err) }
