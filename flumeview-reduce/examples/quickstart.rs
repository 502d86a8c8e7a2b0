//! The quickstart: a memory log, a `sum` reduce view, two appends.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use flumedb_core::{Flume, Json};
use flumelog_memory::MemoryLog;
use flumeview_reduce::Reduce;
use serde_json::{Value, json};

fn main() -> Result<(), flumedb_core::Error> {
    let db = Flume::open(MemoryLog::new(), Json)?;
    let sum = db.add_view(
        "sum",
        Reduce::with_map(
            1,
            0i64,
            |msg: &Value| msg["foo"].as_i64(),
            |sum: &mut i64, n| *sum += n,
        ),
    )?;
    for msg in [json!({"foo": 1}), json!({"foo": 5})] {
        let seq = db.append(&msg)?;
        // The read waits until the view has seen the append: it prints 1, then 6.
        println!("seq {seq}: sum = {}", sum.get()?);
    }
    db.close()
}
