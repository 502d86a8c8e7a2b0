'use strict'
// JS flumeview-query alone, on the benchmark's messages. `cargo xtask bench` runs
// it with JS_DEFAULT_EXACT=1 to measure how many rows the package's default
// (exact:true) loses; it also serves to time the two queries on their own.
//
//   node query.js <messages.jsonl> <workdir> [AUTHOR] [T]
//
// Loads the messages (one SSB-like message per line) into a flumedb on
// flumelog-offset 3.4.4 (JSON codec) at <workdir>/log.offset, with a
// flumeview-query 8.0.0 view "query" (version 1, exact:false) stored in
// <workdir>/query/. When the view has caught up, it times two queries:
//
//   votes:  [{$filter: {value: {content: {type: 'vote'}}}}]            x5
//   author: [{$filter: {value: {author: AUTHOR}, timestamp: {$gt: T}}}] x20
//
// AUTHOR and T default to value.author and the (receive) timestamp of the first
// message. Each query is also counted straight from the input file, and a
// mismatch with the rows the view returned fails the run (exit 2), unless
// JS_DEFAULT_EXACT=1 (then rows and expected rows are both reported).
//
// stdout gets exactly one JSON line:
//   {"load_ms":..,"votes":{"rows":N,"expected":N,"min_ms":..,"median_ms":..,"index":".."},
//    "author":{"rows":N,"expected":N,"min_ms":..,"median_ms":..,"index":".."}}
// load_ms is append + indexing, until the view has caught up with the log.
// Everything else (diagnostics, explain output) goes to stderr.

const fs = require('fs')
const path = require('path')

// Keep stdout for the result line only: map-filter-reduce has stray
// console.log calls (e.g. "SORT" for $sort queries), send those to stderr.
console.log = function () { console.error.apply(console, arguments) }
console.info = console.log

const pull = require('pull-stream')
const readLines = require('./lines')
const Flume = require('flumedb')
const OffsetLog = require('flumelog-offset')
const FlumeQuery = require('flumeview-query')
const jsonCodec = require('flumecodec/json')

const JS_DEFAULT_EXACT = process.env.JS_DEFAULT_EXACT === '1'
const VOTE_RUNS = 5
const AUTHOR_RUNS = 20
const BATCH = 1000

function fail (err) {
  process.stderr.write((err && err.stack ? err.stack : String(err)) + '\n')
  process.exit(1)
}
process.on('uncaughtException', fail)
process.on('unhandledRejection', fail)

function log () {
  console.error.apply(console, ['[query.js]'].concat([].slice.call(arguments)))
}

function nowNs () { return process.hrtime.bigint() }
function msSince (t0) { return Number(process.hrtime.bigint() - t0) / 1e6 }
function round3 (x) { return Math.round(x * 1000) / 1000 }

// map-filter-reduce's open bounds are null (LO) and undefined (HI); name
// them so the explain line stays readable as JSON.
function bounds (a) {
  return a && a.map((v) => v === null ? '<LO>' : v === undefined ? '<HI>' : v)
}

function stats (times) {
  const s = times.slice().sort((a, b) => a - b)
  const n = s.length
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
  return { min_ms: round3(s[0]), median_ms: round3(median) }
}

function main () {
  const argv = process.argv.slice(2)
  if (argv.length < 2) {
    process.stderr.write('usage: node query.js <messages.jsonl> <workdir> [AUTHOR] [T]\n')
    process.exit(64)
  }
  const input = argv[0]
  const workdir = argv[1]

  // The input is read line by line (it may be larger than a JS string can be).
  let firstMessage
  for (const line of readLines(input)) {
    firstMessage = JSON.parse(line)
    break
  }
  if (firstMessage === undefined) throw new Error('no messages in ' + input)
  const author = argv[2] !== undefined ? argv[2] : firstMessage.value.author
  const since = argv[3] !== undefined ? Number(argv[3]) : firstMessage.timestamp
  if (!Number.isFinite(since)) throw new Error('T must be a number, got: ' + argv[3])

  // Reference counts, straight from the input.
  let expectVotes = 0
  let expectAuthor = 0
  let count = 0
  for (const line of readLines(input)) {
    const m = JSON.parse(line)
    const v = m.value || {}
    count++
    if (v.content && v.content.type === 'vote') expectVotes++
    if (v.author === author && m.timestamp > since) expectAuthor++
  }

  fs.mkdirSync(workdir, { recursive: true })
  const file = path.join(workdir, 'log.offset')
  for (const p of [file, path.join(workdir, 'query')]) {
    if (fs.existsSync(p)) throw new Error(p + ' already exists; use an empty workdir')
  }

  const indexes = [
    { key: 'typ', value: [['value', 'content', 'type'], ['timestamp']] },
    { key: 'aut', value: [['value', 'author'], ['timestamp']] }
  ]
  // exact:false (view-wide; each index could override it with its own
  // `exact`) makes flumeview-query append the record's seq to every
  // index key, so records with equal indexed fields are all kept.
  // JS_DEFAULT_EXACT=1 uses the package's default (exact:true) instead, to
  // measure how many rows that default loses: row counts are then reported,
  // not checked.
  const opts = JS_DEFAULT_EXACT ? { indexes: indexes } : { exact: false, indexes: indexes }
  const db = Flume(OffsetLog(file, { blockSize: 1024 * 16, codec: jsonCodec }))
    .use('query', FlumeQuery(1, opts))

  log('loading', count, 'messages from', input, 'into', file)
  const tLoad = nowNs()
  const lines = readLines(input)
  let appendMs
  function appendNext () {
    const batch = []
    while (batch.length < BATCH) {
      const next = lines.next()
      if (next.done) break
      batch.push(JSON.parse(next.value))
    }
    if (!batch.length) {
      appendMs = msSince(tLoad)
      return waitForView()
    }
    db.append(batch, function (err) {
      if (err) return fail(err)
      appendNext()
    })
  }

  function waitForView () {
    let done = false
    const rm = db.query.since(function (upto) {
      if (done || upto == null || upto !== db.since.value) return
      done = true
      // obz may call back synchronously, before rm is assigned
      setImmediate(function () { if (rm) rm() })
      const loadMs = msSince(tLoad)
      log('log since', db.since.value, 'view since', upto,
        'append_ms', round3(appendMs), 'load_ms (append+index)', round3(loadMs))
      runQueries(loadMs)
    })
  }

  function timeQuery (name, query, runs, expected, cb) {
    const explained = db.query.explain({ query: query })
    const index = explained.scan ? 'scan' : explained.index
    log(name, 'explain:', JSON.stringify({
      index: index,
      scores: explained.scores,
      gte: bounds(explained.gte),
      lte: bounds(explained.lte)
    }))
    const times = []
    let rows = -1
    let run = 0
    ;(function next () {
      if (run >= runs) {
        const s = stats(times)
        log(name, 'rows', rows, 'expected', expected, 'runs', runs,
          'min_ms', s.min_ms, 'median_ms', s.median_ms)
        if (rows !== expected && !JS_DEFAULT_EXACT) {
          process.stderr.write('[query.js] ' + name + ': got ' + rows +
            ' rows, the input has ' + expected + '\n')
          process.exit(2)
        }
        return cb(null, { rows: rows, expected: expected, min_ms: s.min_ms, median_ms: s.median_ms, index: index })
      }
      run++
      const t0 = nowNs()
      pull(
        db.query.read({ query: query }),
        pull.collect(function (err, ary) {
          const ms = msSince(t0)
          if (err) return fail(err)
          if (rows !== -1 && rows !== ary.length) {
            return fail(new Error(name + ': row count changed between runs: ' + rows + ' vs ' + ary.length))
          }
          rows = ary.length
          times.push(ms)
          setImmediate(next)
        })
      )
    })()
  }

  function runQueries (loadMs) {
    const votesQ = [{ $filter: { value: { content: { type: 'vote' } } } }]
    const authorQ = [{ $filter: { value: { author: author }, timestamp: { $gt: since } } }]
    log('author query: author', author, 'timestamp >', since)
    timeQuery('votes', votesQ, VOTE_RUNS, expectVotes, function (err, votes) {
      if (err) return fail(err)
      timeQuery('author', authorQ, AUTHOR_RUNS, expectAuthor, function (err, aut) {
        if (err) return fail(err)
        db.close(function (err) {
          if (err) return fail(err)
          process.stdout.write(JSON.stringify({
            load_ms: round3(loadMs),
            votes: votes,
            author: aut
          }) + '\n', function () { process.exit(0) })
        })
      })
    })
  }

  appendNext()
}

try {
  main()
} catch (err) {
  fail(err)
}
