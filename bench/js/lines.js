'use strict'
// The lines of a file, read a megabyte at a time: the benchmark inputs are never held whole
// (at a million messages they are larger than a JS string can be). Empty lines are skipped.

const fs = require('fs')
const { StringDecoder } = require('string_decoder')

module.exports = function * readLines (file) {
  const decoder = new StringDecoder('utf8')
  const fd = fs.openSync(file, 'r')
  const buf = Buffer.alloc(1 << 20)
  let rest = ''
  try {
    let n
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) {
      const parts = (rest + decoder.write(buf.subarray(0, n))).split('\n')
      rest = parts.pop()
      for (const line of parts) if (line.trim() !== '') yield line
    }
    rest += decoder.end()
    if (rest.trim() !== '') yield rest
  } finally {
    fs.closeSync(fd)
  }
}
