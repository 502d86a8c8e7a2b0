//! Keyspace names: every view name flumedb allows gets a name fjall accepts.

use sha2::{Digest, Sha256};

use crate::error::LevelError;

/// The longest keyspace name fjall accepts.
const MAX_KEYSPACE_NAME: usize = 255;

/// fjall's rule for keyspace names (`Database::keyspace` panics on others): 1 to 255 bytes of
/// `[A-Za-z0-9_.#$-]`, as fjall documents it (fjall 3.1 itself checks only the length).
fn is_valid_keyspace_name(name: &str) -> bool {
    (1..=MAX_KEYSPACE_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.#$-".contains(&b))
}

/// The keyspace of a view: `view-<name>` for names of `[A-Za-z0-9_-]`, other names
/// hex-encoded (`viewx-<hex>`), and names whose encoding would not fit fjall's 255 bytes as
/// the SHA-256 of the name (`viewh-<hex>`). The first two forms must not change: existing
/// indexes live under them.
pub(super) fn keyspace_name(view: &str) -> Result<String, LevelError> {
    let plain = view
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let name = if plain && "view-".len() + view.len() <= MAX_KEYSPACE_NAME {
        format!("view-{view}")
    } else if "viewx-".len() + 2 * view.len() <= MAX_KEYSPACE_NAME {
        format!("viewx-{}", hex(view.as_bytes()))
    } else {
        format!("viewh-{}", hex(Sha256::digest(view.as_bytes()).as_slice()))
    };
    if !is_valid_keyspace_name(&name) {
        return Err(LevelError::InvalidName {
            view: view.to_string(),
            reason: format!("its keyspace name {name:?} is not one fjall accepts"),
        });
    }
    Ok(name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_name_core_allows_gets_a_valid_keyspace_name_and_old_names_keep_theirs() {
        assert_eq!(keyspace_name("by_author-2").unwrap(), "view-by_author-2");
        assert_eq!(keyspace_name("a.b").unwrap(), "viewx-612e62");
        let long = "é. ".repeat(50);
        let name = keyspace_name(&long).unwrap();
        assert!(name.starts_with("viewh-") && name.len() == 6 + 64, "{name}");
        for len in 1..=200 {
            for fill in ["a", ".", " ", "é", "_"] {
                let mut view = String::new();
                while view.len() + fill.len() <= len {
                    view.push_str(fill);
                }
                while view.len() < len {
                    view.push('x');
                }
                let name = keyspace_name(&view).unwrap();
                assert!(is_valid_keyspace_name(&name), "{view:?} -> {name:?}");
            }
        }
        // Names from other drivers may be longer still.
        assert!(
            keyspace_name(&"a".repeat(1000))
                .unwrap()
                .starts_with("viewh-")
        );
    }
}
