//! The `ssb_db2` example end to end: a log built by the real JS packages (ssb-db2's layout:
//! BIPF `{key, value, timestamp}` records in an async-append-only-log), opened with a level and
//! a query view, every answer checked against what the JS generator wrote.

#[allow(dead_code)]
#[path = "../examples/ssb_db2.rs"]
mod example;

#[test]
fn an_ssb_db2_log_built_by_js_is_queried_here() {
    let dir = tempfile::tempdir().unwrap();
    let answers = example::build_and_check(dir.path()).unwrap();
    assert_eq!(answers.count, 2_000);
    // Reopened: the views are current and give the same answers without a rebuild.
    let again = example::query(dir.path(), Some(&answers.author.0)).unwrap();
    assert_eq!(again, answers);
}
