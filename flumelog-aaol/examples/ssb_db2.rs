//! Opens an ssb-db2 log (`db2/log.bipf`: an async-append-only-log of BIPF records
//! `{key, value, timestamp}`) and queries it with a level view and a query view, reading the
//! indexed fields of each record in place.
//!
//! `cargo run -p flumelog-aaol --example ssb_db2 -- <dir>` queries the log in `<dir>/db2/`.
//! Without a directory it first builds one with the real JS packages (`examples/js/make-log.js`:
//! npm async-append-only-log 4.3.10 and bipf 1.9.0, installed from the lock file; node and npm
//! needed) holding 2,000 messages, and checks every answer against what the generator wrote.

use std::path::{Path, PathBuf};
use std::process::Command;

use flumecodec_bipf::{Bipf, BipfDoc};
use flumedb_core::{Flume, StreamOptions};
use flumelog_aaol::AaolLog;
use flumeview_level::{Key, KeyError, Level, ReadOptions};
use flumeview_query::{Index, Pipeline, Query, QueryOptions};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error>;

/// What the example finds in a log.
#[derive(Debug, PartialEq)]
pub struct Answers {
    /// Messages in the log.
    pub count: u64,
    /// Messages per content type.
    pub counts: Value,
    /// An author (the one asked for, else the first in key order) and how many messages
    /// the level view holds for them.
    pub author: (String, u64),
    /// The key of the last message.
    pub last_key: String,
}

/// Opens `<dir>/db2/log.bipf` with its views and answers the questions, counting the
/// messages of `author` (else of the first author in key order).
pub fn query(dir: &Path, author: Option<&str>) -> Result<Answers, Error> {
    let log = AaolLog::open(dir.join("db2").join("log.bipf"))?;
    let db: Flume<AaolLog, BipfDoc, Bipf> = Flume::open(log, Bipf)?;

    // A level view keyed [author, sequence]: two fields read in place per record.
    let feeds = db.add_view(
        "feeds",
        Level::new(1, |msg: &BipfDoc, _| {
            let author = msg.get(&["value", "author"])?.ok_or(KeyError::Object)?;
            let sequence = msg.get(&["value", "sequence"])?.ok_or(KeyError::Object)?;
            Ok(vec![Key::array([
                Key::try_from(author)?,
                Key::try_from(sequence)?,
            ])])
        }),
    )?;
    // A query view with jitdb's two most used indexes.
    let query = db.add_view(
        "query",
        Query::for_bipf(
            1,
            vec![
                Index::new("typ", ["value.content.type", "timestamp"]),
                Index::new("aut", ["value.author", "timestamp"]),
            ],
        )?,
    )?;

    let count = db.stream(StreamOptions::new())?.count() as u64;
    // Counts by type, from the counts the query view keeps per indexed value.
    let by_type = Pipeline::parse(&json!([
        {"$reduce": {"type": ["value", "content", "type"], "n": {"$count": true}}}
    ]))?;
    let mut counts = serde_json::Map::new();
    for row in query.read(&by_type, QueryOptions::new())? {
        let row = row?;
        counts.insert(
            row["type"].as_str().unwrap_or_default().to_string(),
            row["n"].clone(),
        );
    }
    // The author's messages, from the level view's rows alone.
    let author = match author {
        Some(author) => author.to_string(),
        None => feeds
            .read(ReadOptions::new().limit(1))?
            .next()
            .transpose()?
            .and_then(|row| row.value)
            .and_then(|m| {
                m.get(&["value", "author"])
                    .ok()
                    .flatten()
                    .and_then(|f| f.as_str().map(str::to_string))
            })
            .ok_or("an empty log")?,
    };
    let of_author = feeds
        .read(
            ReadOptions::new()
                .gte(Key::array([author.as_str()]))
                .lte(Key::Array(vec![Key::from(author.as_str()), Key::Max]))
                .values(false),
        )?
        .count() as u64;
    // The last message: a reverse stream of one.
    let last = db
        .stream(StreamOptions::new().reverse().limit(1))?
        .next()
        .ok_or("an empty log")??;
    let last_key = last
        .value
        .get(&["key"])?
        .and_then(|f| f.as_str().map(str::to_string))
        .ok_or("a message without a key")?;
    db.close()?;
    Ok(Answers {
        count,
        counts: Value::Object(counts),
        author: (author, of_author),
        last_key,
    })
}

/// Builds a log of `count` messages in `dir` with the JS generator; returns what it printed.
pub fn build_with_js(dir: &Path, count: usize) -> Result<Value, Error> {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/js");
    if !js.join("node_modules/bipf").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&js)
            .status()?;
        if !status.success() {
            return Err("npm ci in examples/js failed".into());
        }
    }
    let out = Command::new("node")
        .arg(js.join("make-log.js"))
        .arg(dir)
        .arg(count.to_string())
        .output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Builds a log with JS and checks every answer against the generator's.
pub fn build_and_check(dir: &Path) -> Result<Answers, Error> {
    let made = build_with_js(dir, 2_000)?;
    let first_author = made["authors"][0].as_str().ok_or("no authors")?;
    let answers = query(dir, Some(first_author))?;
    let expected = Answers {
        count: made["count"].as_u64().ok_or("no count")?,
        counts: made["counts"].clone(),
        author: (
            first_author.to_string(),
            made["first_author_messages"]
                .as_u64()
                .ok_or("no author count")?,
        ),
        last_key: made["last_key"].as_str().ok_or("no last key")?.to_string(),
    };
    if answers != expected {
        return Err(format!("found {answers:?}, the generator wrote {expected:?}").into());
    }
    Ok(answers)
}

fn main() -> Result<(), Error> {
    let dir: Option<PathBuf> = std::env::args_os().nth(1).map(PathBuf::from);
    let answers = match dir {
        Some(dir) => query(&dir, None)?,
        None => {
            let dir = tempfile::tempdir()?;
            build_and_check(dir.path())?
        }
    };
    println!("{} messages; by type {}", answers.count, answers.counts);
    println!(
        "{} has {} messages; the last message is {}",
        answers.author.0, answers.author.1, answers.last_key
    );
    Ok(())
}
