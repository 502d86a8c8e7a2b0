//! [`Budget`]: how a directory's fjall database spends the database's memory budget.

/// The smallest block cache and memtable fjall is given, whatever the budget.
const FLOOR: u64 = 1 << 20;

/// Memtables above this index no faster (docs/performance.md), so larger budgets go to the
/// cache.
const MEMTABLE_CEILING: u64 = 16 << 20;

/// Budgets from which the database gets a second worker thread (flushes run beside
/// compactions: faster builds, at a thread's buffers more).
const TWO_WORKERS_FROM: u64 = 64 << 20;

/// The settings of one directory's database, derived from the memory budget of the first view
/// that opened it ([`flumedb_core::ViewContext::memory_budget`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Budget {
    /// fjall's block cache, shared by every keyspace: half the budget.
    pub(crate) cache: u64,
    /// Each keyspace's memtable: an eighth of the budget (a few views, each with a memtable
    /// filling while another is flushed, stay within the other half), at most 16 MiB.
    pub(crate) memtable: u64,
    /// fjall's flush and compaction threads.
    pub(crate) workers: usize,
}

impl Budget {
    /// The settings for a budget of `bytes`.
    pub(crate) fn new(bytes: u64) -> Budget {
        Budget {
            cache: (bytes / 2).max(FLOOR),
            memtable: (bytes / 8).clamp(FLOOR, MEMTABLE_CEILING),
            workers: if bytes >= TWO_WORKERS_FROM { 2 } else { 1 },
        }
    }

    /// The options of every view's keyspace.
    ///
    /// Every table's filter and block index stay in memory (about 3 bytes a row, outside the
    /// budget): fjall pins them for its first levels only and reads the rest through the block
    /// cache, which refuses a block larger than one of its shards (a budget's cache split by
    /// four times the cores), so a large table's filter was read and checksummed from the file
    /// on every point read (docs/performance.md: 10,000 gets of a 1M-row index, 1,000 → 45 ms).
    pub(crate) fn keyspace_options(self) -> fjall::KeyspaceCreateOptions {
        use fjall::config::PinningPolicy;
        fjall::KeyspaceCreateOptions::default()
            .max_memtable_size(self.memtable)
            .filter_block_pinning_policy(PinningPolicy::all(true))
            .index_block_pinning_policy(PinningPolicy::all(true))
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(flumedb_core::DEFAULT_MEMORY_BUDGET)
    }
}

#[cfg(test)]
mod tests {
    use super::Budget;
    use fjall::config::PinningPolicy;

    #[test]
    fn a_budget_splits_into_cache_memtables_and_workers() {
        let mib = 1 << 20;
        assert_eq!(
            Budget::default(),
            Budget {
                cache: 8 * mib,
                memtable: 2 * mib,
                workers: 1
            }
        );
        assert_eq!(
            Budget::new(256 * mib),
            Budget {
                cache: 128 * mib,
                memtable: 16 * mib,
                workers: 2
            }
        );
        // Point reads never load a table's filter or block index from its file.
        let options = Budget::default().keyspace_options();
        assert_eq!(
            options.filter_block_pinning_policy,
            PinningPolicy::all(true)
        );
        assert_eq!(options.index_block_pinning_policy, PinningPolicy::all(true));
        // Tiny budgets still get a working store.
        assert_eq!(
            Budget::new(0),
            Budget {
                cache: mib,
                memtable: mib,
                workers: 1
            }
        );
    }
}
