// The JS side of flumecodec-bipf's differential test (tests/js_diff.rs), on npm bipf 1.9.0.
//   node bipf.js encode   stdin: JSON array of values   stdout: JSON array of hex encodings
//   node bipf.js decode   stdin: JSON array of hex      stdout: JSON array of [JSON text, hex of re-encoding]
//   node bipf.js random N SEED   stdout: JSON array of [JSON text, hex], values made in JS
const bipf = require('bipf')

const hex = (buf) => buf.toString('hex')
const readStdin = () => JSON.parse(require('fs').readFileSync(0, 'utf8'))

// A small deterministic PRNG (mulberry32), so a failing seed can be replayed.
function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function randomValue(r, depth) {
  const pick = Math.floor(r() * (depth > 3 ? 7 : 9))
  const numbers = [0, -0, 1, -1, 2147483647, -2147483647, -2147483648, 2147483648,
    2 ** 53 - 1, -(2 ** 53), 2 ** 60, 1e21, 0.1, -1.5, 3e9, 5e-324, 1.7976931348623157e308]
  switch (pick) {
    case 0: return null
    case 1: return r() < 0.5
    case 2: return numbers[Math.floor(r() * numbers.length)]
    case 3: return Math.floor((r() - 0.5) * 2 ** (1 + Math.floor(r() * 52)))
    case 4: return (r() - 0.5) * 10 ** Math.floor(r() * 20 - 10)
    case 5: case 6: {
      const chars = ['a', 'z', '0', ' ', '"', '\\', '\n', 'é', '日', '🌊', '\u0000', '\u007f']
      let s = ''
      const n = Math.floor(r() * 12)
      for (let i = 0; i < n; i++) s += chars[Math.floor(r() * chars.length)]
      return s
    }
    case 7: {
      const a = []
      const n = Math.floor(r() * 5)
      for (let i = 0; i < n; i++) a.push(randomValue(r, depth + 1))
      return a
    }
    default: {
      const o = {}
      const keys = ['a', 'b', 'key', 'value', '0', '1', '10', '01', '-1', '2', 'é', '']
      const n = Math.floor(r() * 5)
      for (let i = 0; i < n; i++) o[keys[Math.floor(r() * keys.length)]] = randomValue(r, depth + 1)
      return o
    }
  }
}

const [mode, ...args] = process.argv.slice(2)
let out
if (mode === 'encode') {
  out = readStdin().map((v) => hex(bipf.allocAndEncode(v)))
} else if (mode === 'decode') {
  out = readStdin().map((h) => {
    const v = bipf.decode(Buffer.from(h, 'hex'), 0)
    return [JSON.stringify(v), hex(bipf.allocAndEncode(v))]
  })
} else if (mode === 'random') {
  const r = rng(Number(args[1]))
  out = []
  for (let i = 0; i < Number(args[0]); i++) {
    const v = randomValue(r, 0)
    out.push([JSON.stringify(v), hex(bipf.allocAndEncode(v))])
  }
} else {
  throw new Error('mode: encode | decode | random N SEED')
}
process.stdout.write(JSON.stringify(out))
