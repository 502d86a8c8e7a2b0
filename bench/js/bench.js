'use strict'
// JS side of the Rust/JS side-by-side flumedb benchmark.
//
//   node bench.js <messages.jsonl> <workdir> <params.json>
//
// <messages.jsonl>: one SSB-like message {key, value: {author, sequence,
// content: {type, ..}, ..}, timestamp} per line; params.n must equal their count.
// <workdir>: must be empty or absent; the log goes to <workdir>/log.offset.
// <params.json>: {"n": N, "get": [index, ..], "level_get": [[author, sequence], ..],
//                 "range_author": "@..", "query_author": "@..", "query_since": T}
//
// A flumedb 2.1.8 on flumelog-offset 3.4.4 (blockSize 16 KiB, JSON codec) with
// three views:
//   reduce  flumeview-reduce 1.4.0, version 1: count of messages by content type
//   level   flumeview-level 4.0.4, version 1: key [author, sequence]
//   query   flumeview-query 8.0.0, version 1, exact:false, indexes
//           typ = [value.content.type, timestamp], aut = [value.author, timestamp]
//
// Figures, in order (times from process.hrtime.bigint(), ms with 3 decimals):
//   append_ms       append each message alone, waiting for its callback, then
//                   wait until every view's since equals the log's since
//   get_ms          params.get.length sequential db.get(seq of message i)
//   level_get_ms    params.level_get.length sequential db.level.get([author, sequence])
//   scan_ms         pull the whole log (db.stream({seqs: false})), scan_count records
//   level_range_ms  db.level.read({gte: [A, null], lte: [A, undefined]}) for
//                   A = range_author, level_range_rows records
//   votes_ms        min of 5 runs of the query {value: {content: {type: 'vote'}}}
//   author_ms       min of 20 runs of {value: {author: query_author},
//                   timestamp: {$gt: query_since}}
//   count_votes_ms  min of 20 runs of the votes query with {$reduce: {$count: true}}
//   count_types_ms  min of 20 runs of {$reduce: {type: [value, content, type], n: {$count: true}}}
//   reduce_get_us   mean of 1,000 sequential db.reduce.get(cb), in microseconds;
//                   counts = its value
//   reopen_ms       after db.close: construct a new flumedb on the same file,
//                   wait until all views have caught up, then one db.reduce.get
//   rebuild_ms      db.rebuild(cb), until its callback and all views caught up
//   close_ms        db.close, until its callback
//   rss_kb          VmHWM from /proc/self/status at the end
//   *_sum           the sum of value.sequence over every record a read returned
//                   (get, level_get, scan, level_range, votes, author): every side
//                   must give the same sums, so none can skip reading its results
//
// Every answer is checked against the input file; a mismatch exits 2, any other
// failure exits 1. stdout gets exactly one JSON line; diagnostics go to stderr.

const fs = require('fs')
const path = require('path')

// Keep stdout for the result line only (map-filter-reduce has stray console.log
// calls); send those to stderr.
console.log = function () { console.error.apply(console, arguments) }
console.info = console.log

const pull = require('pull-stream')
const readLines = require('./lines')
const Flume = require('flumedb')
const OffsetLog = require('flumelog-offset')
const Reduce = require('flumeview-reduce')
const Level = require('flumeview-level')
const FlumeQuery = require('flumeview-query')
const jsonCodec = require('flumecodec/json')

const VIEWS = ['reduce', 'level', 'query']
const VOTE_RUNS = 5
const AUTHOR_RUNS = 20
const REDUCE_GETS = 1000

function fail (err) {
  process.stderr.write('[bench.js] error: ' + (err && err.stack ? err.stack : String(err)) + '\n')
  process.exit(1)
}
process.on('uncaughtException', fail)
process.on('unhandledRejection', fail)

function mismatch (what) {
  process.stderr.write('[bench.js] MISMATCH: ' + what + '\n')
  process.exit(2)
}

function log () {
  console.error.apply(console, ['[bench.js]'].concat([].slice.call(arguments)))
}

function nowNs () { return process.hrtime.bigint() }
function msBetween (t0, t1) { return Number(t1 - t0) / 1e6 }
function round3 (x) { return Math.round(x * 1000) / 1000 }

// Canonical JSON of a {type: count} object (key order independent).
function countsKey (o) {
  const out = {}
  for (const k of Object.keys(o).sort()) out[k] = o[k]
  return JSON.stringify(out)
}

// Run step(i, next) for i = 0..n-1, one after the other; copes with steps that
// call back synchronously (no unbounded recursion).
function loop (n, step, done) {
  let i = 0
  let inLoop = false
  let pending = false
  function next (err) {
    if (err) return done(err)
    if (inLoop) { pending = true; return }
    inLoop = true
    do {
      pending = false
      if (i >= n) { inLoop = false; return done(null) }
      step(i++, next)
    } while (pending)
    inLoop = false
  }
  next()
}

function openDb (file) {
  return Flume(OffsetLog(file, { blockSize: 16 * 1024, codec: jsonCodec }))
    .use('reduce', Reduce(1, function (acc, type) {
      acc[type] = (acc[type] || 0) + 1
      return acc
    }, function (msg) {
      return msg.value.content.type
    }, null, {})) // a fresh initial object per db
    .use('level', Level(1, function (msg, seq) {
      return [[msg.value.author, msg.value.sequence]]
    }))
    .use('query', FlumeQuery(1, {
      exact: false,
      indexes: [
        { key: 'typ', value: [['value', 'content', 'type'], ['timestamp']] },
        { key: 'aut', value: [['value', 'author'], ['timestamp']] }
      ]
    }))
}

// Call back (with the hrtime at which it happened) once the log's since is
// known (a seq >= 0) and every view's since equals it.
function waitCaughtUp (db, cb) {
  let done = false
  const rms = []
  function check () {
    if (done) return
    const s = db.since.value
    if (typeof s !== 'number' || s < 0) return
    for (const name of VIEWS) if (db[name].since.value !== s) return
    done = true
    const t = nowNs()
    // observables may call back synchronously, before rms is filled
    setImmediate(function () {
      for (const rm of rms) if (typeof rm === 'function') rm()
      cb(t)
    })
  }
  rms.push(db.since(check))
  for (const name of VIEWS) rms.push(db[name].since(check))
  check()
}

function viewSinces (db) {
  return 'log ' + db.since.value + ' ' +
    VIEWS.map(function (n) { return n + ' ' + db[n].since.value }).join(' ')
}

function runQuery (db, query, cb) {
  pull(db.query.read({ query: query }), pull.collect(cb))
}

function main () {
  const argv = process.argv.slice(2)
  if (argv.length !== 3) {
    process.stderr.write('usage: node bench.js <messages.jsonl> <workdir> <params.json>\n')
    process.exit(1)
  }
  const input = argv[0]
  const workdir = argv[1]
  const params = JSON.parse(fs.readFileSync(argv[2], 'utf8'))
  const tStart = nowNs()

  if (fs.existsSync(workdir)) {
    if (!fs.statSync(workdir).isDirectory()) throw new Error(workdir + ' exists and is not a directory')
    if (fs.readdirSync(workdir).length) throw new Error(workdir + ' is not empty; refusing to use it')
  }
  // The input is read line by line (twice: for the reference answers, then to append), as
  // on the Rust side; only the message keys are kept (to check gets).
  const keys = []
  for (const line of readLines(input)) keys.push(JSON.parse(line).key)
  const N = keys.length
  if (!N) throw new Error('no messages in ' + input)
  if (params.n !== N) throw new Error('params.n = ' + params.n + ' but ' + input + ' has ' + N + ' messages')
  for (const i of params.get) {
    if (!Number.isInteger(i) || i < 0 || i >= N) throw new Error('params.get: bad index ' + i)
  }

  // Reference answers, straight from the input.
  const rangeAuthor = params.range_author
  const queryAuthor = params.query_author
  const querySince = params.query_since
  if (typeof rangeAuthor !== 'string' || typeof queryAuthor !== 'string' || typeof querySince !== 'number') {
    throw new Error('params: range_author, query_author (strings) and query_since (number) are required')
  }
  let expectVotes = 0
  let expectAuthor = 0
  let expectRange = 0
  for (const line of readLines(input)) {
    const m = JSON.parse(line)
    const v = m.value
    if (v.content && v.content.type === 'vote') expectVotes++
    if (v.author === queryAuthor && m.timestamp > querySince) expectAuthor++
    if (v.author === rangeAuthor) expectRange++
  }

  fs.mkdirSync(workdir, { recursive: true })
  const file = path.join(workdir, 'log.offset')

  const out = {}
  const seqs = new Array(N)
  let db = openDb(file)

  // 1. append, one message at a time, then wait for the views.
  log('appending', N, 'messages one at a time into', file)
  // Timed: each append until its callback (parsing the input line is not), then the wait
  // until all views have caught up.
  let appendNs = 0n
  const lines = readLines(input)
  loop(N, function (i, next) {
    const msg = JSON.parse(lines.next().value)
    const t = nowNs()
    db.append(msg, function (err, seq) {
      appendNs += nowNs() - t
      if (err) return next(err)
      seqs[i] = seq
      next()
    })
  }, function (err) {
    if (err) return fail(err)
    const tAppended = nowNs()
    waitCaughtUp(db, function (t) {
      out.append_ms = round3(Number(appendNs) / 1e6 + msBetween(tAppended, t))
      log('append_ms', out.append_ms, '(appends alone', round3(Number(appendNs) / 1e6) + ')', viewSinces(db))
      doGet()
    })
  })

  // 2. db.get
  let getSum = 0
  function doGet () {
    const idx = params.get
    const t0 = nowNs()
    loop(idx.length, function (k, next) {
      const i = idx[k]
      db.get(seqs[i], function (err, msg) {
        if (err) return next(err)
        if (!msg || msg.key !== keys[i]) {
          mismatch('get #' + k + ' (message ' + i + ', seq ' + seqs[i] + '): got key ' +
            (msg && msg.key) + ', expected ' + keys[i])
        }
        getSum += msg.value.sequence
        next()
      })
    }, function (err) {
      if (err) return fail(err)
      out.get_ms = round3(msBetween(t0, nowNs()))
      out.get_sum = getSum
      log('get_ms', out.get_ms, 'for', idx.length, 'gets')
      doLevelGet()
    })
  }

  // 3. db.level.get
  let levelGetSum = 0
  function doLevelGet () {
    const keys = params.level_get
    const t0 = nowNs()
    loop(keys.length, function (k, next) {
      const key = keys[k]
      db.level.get(key, function (err, msg) {
        if (err) {
          if (err.name === 'NotFoundError' || err.notFound) {
            mismatch('level get ' + JSON.stringify(key) + ': not found')
          }
          return next(err)
        }
        if (!msg || !msg.value || msg.value.author !== key[0] || msg.value.sequence !== key[1]) {
          mismatch('level get ' + JSON.stringify(key) + ': got ' +
            JSON.stringify(msg && msg.value && [msg.value.author, msg.value.sequence]))
        }
        levelGetSum += msg.value.sequence
        next()
      })
    }, function (err) {
      if (err) return fail(err)
      out.level_get_ms = round3(msBetween(t0, nowNs()))
      out.level_get_sum = levelGetSum
      log('level_get_ms', out.level_get_ms, 'for', keys.length, 'gets')
      doScan()
    })
  }

  // 4. full log scan
  function doScan () {
    let count = 0
    let sum = 0
    const t0 = nowNs()
    pull(
      db.stream({ seqs: false, values: true }),
      pull.drain(function (msg) { count++; sum += msg.value.sequence }, function (err) {
        if (err) return fail(err)
        out.scan_ms = round3(msBetween(t0, nowNs()))
        out.scan_count = count
        out.scan_sum = sum
        log('scan_ms', out.scan_ms, 'scan_count', count)
        if (count !== N) mismatch('scan_count ' + count + ', the input has ' + N + ' messages')
        doLevelRange()
      })
    )
  }

  // 5. level range over one author
  function doLevelRange () {
    const t0 = nowNs()
    pull(
      db.level.read({ gte: [rangeAuthor, null], lte: [rangeAuthor, undefined], keys: true, values: true }),
      pull.collect(function (err, rows) {
        if (err) return fail(err)
        out.level_range_ms = round3(msBetween(t0, nowNs()))
        out.level_range_rows = rows.length
        out.level_range_sum = rows.reduce(function (s, r) { return s + r.value.value.sequence }, 0)
        log('level_range_ms', out.level_range_ms, 'rows', rows.length, 'expected', expectRange)
        if (rows.length !== expectRange) {
          mismatch('level_range_rows ' + rows.length + ', the input has ' + expectRange +
            ' messages by ' + rangeAuthor)
        }
        for (const r of rows) {
          if (!r.value || !r.value.value || r.value.value.author !== rangeAuthor) {
            mismatch('level range returned a message not by ' + rangeAuthor)
          }
        }
        doVotes()
      })
    )
  }

  // 6./7. queries: min of `runs` runs; every run must return the same rows.
  function timeQuery (name, query, runs, expected, cb) {
    let best = Infinity
    let keys = null
    let sum = 0
    loop(runs, function (r, next) {
      const t0 = nowNs()
      runQuery(db, query, function (err, rows) {
        const ms = msBetween(t0, nowNs())
        if (err) return next(err)
        if (rows.length !== expected) {
          mismatch(name + ': got ' + rows.length + ' rows, the input has ' + expected)
        }
        const k = rows.map(function (m) { return m.key }).join('\n')
        if (keys !== null && k !== keys) mismatch(name + ': rows changed between runs')
        keys = k
        sum = rows.reduce(function (s, m) { return s + m.value.sequence }, 0)
        if (ms < best) best = ms
        setImmediate(next)
      })
    }, function (err) {
      if (err) return fail(err)
      log(name, 'rows', expected, 'min_ms', round3(best), 'of', runs, 'runs')
      cb(round3(best), keys, sum)
    })
  }

  const votesQ = [{ $filter: { value: { content: { type: 'vote' } } } }]
  const authorQ = [{ $filter: { value: { author: queryAuthor }, timestamp: { $gt: querySince } } }]
  let votesKeys
  function doVotes () {
    timeQuery('votes', votesQ, VOTE_RUNS, expectVotes, function (ms, keys, sum) {
      out.votes_ms = ms
      out.votes_rows = expectVotes
      out.votes_sum = sum
      votesKeys = keys
      doAuthor()
    })
  }
  function doAuthor () {
    timeQuery('author', authorQ, AUTHOR_RUNS, expectAuthor, function (ms, keys, sum) {
      out.author_ms = ms
      out.author_rows = expectAuthor
      out.author_sum = sum
      doCountVotes()
    })
  }

  // 7b. a $count of the votes: min of AUTHOR_RUNS runs, each must give the number of votes
  const countQ = [{ $filter: { value: { content: { type: 'vote' } } } }, { $reduce: { $count: true } }]
  function doCountVotes () {
    let best = Infinity
    loop(AUTHOR_RUNS, function (r, next) {
      const t0 = nowNs()
      runQuery(db, countQ, function (err, rows) {
        const ms = msBetween(t0, nowNs())
        if (err) return next(err)
        if (rows.length !== 1 || rows[0] !== expectVotes) {
          mismatch('count of votes: got ' + JSON.stringify(rows) + ', the input has ' + expectVotes)
        }
        if (ms < best) best = ms
        setImmediate(next)
      })
    }, function (err) {
      if (err) return fail(err)
      out.count_votes_ms = round3(best)
      log('count_votes_ms', out.count_votes_ms)
      doCountTypes()
    })
  }

  // 7c. counts by type: a $reduce grouped by the content type, min of AUTHOR_RUNS runs,
  // every run must give the same groups
  const typesQ = [{ $reduce: { type: ['value', 'content', 'type'], n: { $count: true } } }]
  function doCountTypes () {
    let best = Infinity
    let first
    loop(AUTHOR_RUNS, function (r, next) {
      const t0 = nowNs()
      runQuery(db, typesQ, function (err, rows) {
        const ms = msBetween(t0, nowNs())
        if (err) return next(err)
        const byType = {}
        for (const g of rows) byType[g.type] = g.n
        const text = JSON.stringify(byType)
        if (first === undefined) first = text
        else if (text !== first) mismatch('counts by type changed between runs: ' + text + ' then ' + first)
        if (ms < best) best = ms
        setImmediate(next)
      })
    }, function (err) {
      if (err) return fail(err)
      out.count_types_ms = round3(best)
      out.count_types = JSON.parse(first)
      log('count_types_ms', out.count_types_ms)
      doReduceGet()
    })
  }

  // 8. reduce get
  let counts
  function doReduceGet () {
    let last
    const t0 = nowNs()
    loop(REDUCE_GETS, function (k, next) {
      db.reduce.get(function (err, value) {
        if (err) return next(err)
        last = value
        next()
      })
    }, function (err) {
      if (err) return fail(err)
      out.reduce_get_us = round3(Number(nowNs() - t0) / 1e3 / REDUCE_GETS)
      counts = JSON.parse(JSON.stringify(last))
      out.counts = counts
      let sum = 0
      for (const k in counts) sum += counts[k]
      log('reduce_get_us', out.reduce_get_us, 'counts', JSON.stringify(counts))
      if (sum !== N) mismatch('reduce counts sum to ' + sum + ', the input has ' + N + ' messages')
      if ((counts.vote || 0) !== expectVotes) mismatch('reduce counts ' + counts.vote + ' votes, the input has ' + expectVotes)
      doReopen()
    })
  }

  // 9. close, reopen, catch up, one reduce get
  function doReopen () {
    const tClose = nowNs()
    db.close(function (err) {
      if (err) return fail(err)
      out.close_ms = round3(msBetween(tClose, nowNs()))
      log('closed in', out.close_ms, 'ms; reopening')
      const t0 = nowNs()
      db = openDb(file)
      waitCaughtUp(db, function () {
        db.reduce.get(function (err, value) {
          const t1 = nowNs()
          if (err) return fail(err)
          out.reopen_ms = round3(msBetween(t0, t1))
          log('reopen_ms', out.reopen_ms, viewSinces(db))
          if (countsKey(value) !== countsKey(counts)) {
            mismatch('reduce counts after reopen ' + JSON.stringify(value) + ', before ' + JSON.stringify(counts))
          }
          doRebuild()
        })
      })
    })
  }

  // 10. rebuild all views
  function doRebuild () {
    const t0 = nowNs()
    db.rebuild(function (err) {
      if (err) return fail(err)
      log('rebuild callback after', round3(msBetween(t0, nowNs())), 'ms;', viewSinces(db))
      waitCaughtUp(db, function (t) {
        out.rebuild_ms = round3(msBetween(t0, t))
        log('rebuild_ms', out.rebuild_ms, viewSinces(db))
        runQuery(db, votesQ, function (err, rows) {
          if (err) return fail(err)
          const k = rows.map(function (m) { return m.key }).join('\n')
          if (rows.length !== expectVotes || k !== votesKeys) {
            mismatch('votes after rebuild: ' + rows.length + ' rows (expected ' + expectVotes +
              ')' + (k !== votesKeys ? ', rows differ' : ''))
          }
          db.reduce.get(function (err, value) {
            if (err) return fail(err)
            if (countsKey(value) !== countsKey(counts)) {
              mismatch('reduce counts after rebuild ' + JSON.stringify(value) + ', before ' + JSON.stringify(counts))
            }
            finish()
          })
        })
      })
    })
  }

  // 11. peak RSS, close, print
  function finish () {
    const status = fs.readFileSync('/proc/self/status', 'utf8')
    const m = /^VmHWM:\s*(\d+)\s*kB/m.exec(status)
    if (!m) throw new Error('no VmHWM in /proc/self/status')
    const rssKb = Number(m[1])
    db.close(function (err) {
      if (err) return fail(err)
      const result = {
        append_ms: out.append_ms,
        get_ms: out.get_ms,
        get_sum: out.get_sum,
        level_get_ms: out.level_get_ms,
        level_get_sum: out.level_get_sum,
        scan_ms: out.scan_ms,
        scan_count: out.scan_count,
        scan_sum: out.scan_sum,
        level_range_ms: out.level_range_ms,
        level_range_rows: out.level_range_rows,
        level_range_sum: out.level_range_sum,
        votes_ms: out.votes_ms,
        votes_rows: out.votes_rows,
        votes_sum: out.votes_sum,
        author_ms: out.author_ms,
        count_votes_ms: out.count_votes_ms,
        count_types_ms: out.count_types_ms,
        count_types: out.count_types,
        author_rows: out.author_rows,
        author_sum: out.author_sum,
        reduce_get_us: out.reduce_get_us,
        counts: counts,
        close_ms: out.close_ms,
        reopen_ms: out.reopen_ms,
        rebuild_ms: out.rebuild_ms,
        rss_kb: rssKb
      }
      log('done; rss_kb', rssKb, 'wall', round3(msBetween(tStart, nowNs())), 'ms')
      process.stdout.write(JSON.stringify(result) + '\n', function () { process.exit(0) })
    })
  }
}

try {
  main()
} catch (err) {
  fail(err)
}
