'use strict'
// Shared helpers for read.js / write.js (flumelog-offset 3.4.4 interop).

// Raw codec: payload bytes go in and come out unchanged. `buffer: true` makes
// flumelog-offset hand the Buffer (not a string) to decode() when streaming;
// get() always passes the Buffer. This is also the library's default codec.
const rawCodec = {
  encode: (x) => x,
  decode: (x) => x,
  buffer: true
}

function parseWidth (arg) {
  if (arg === undefined) return 32
  if (arg === '32' || arg === '48' || arg === '53') return Number(arg)
  throw new Error('offset width must be 32, 48 or 53, got: ' + arg)
}

function fail (err) {
  process.stderr.write((err && err.stack ? err.stack : String(err)) + '\n')
  process.exit(1)
}

// Library errors are sometimes thrown from inside fs callbacks; make sure
// they end the process with a non-zero code and a message on stderr.
process.on('uncaughtException', fail)
process.on('unhandledRejection', fail)

module.exports = { rawCodec, parseWidth, fail }
