//! Panics caught at the edges of user code (views, codecs, mappers, logs), turned into text.

use std::any::Any;

/// The message a caught panic carried, or "unknown panic" for a payload that is not text.
pub(crate) fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
