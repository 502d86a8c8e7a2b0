//! Panics caught at the edges of user code (views, codecs, mappers, logs), turned into text.

use std::any::Any;

/// The message a caught panic carried, or "unknown panic" for a payload that is not text: for
/// crates that catch panics of code they call (views, a storage engine) and report them.
///
/// ```
/// let caught = std::panic::catch_unwind(|| panic!("view broke at {}", 7)).unwrap_err();
/// assert_eq!(flumedb_core::panic_message(&caught), "view broke at 7");
/// ```
pub fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
