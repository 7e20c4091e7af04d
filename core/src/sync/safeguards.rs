//! Safeguards (product.md §3.6): deletions only from a complete fetch, no plan from an empty
//! directory, and a limit on deletions that a run may pass only when confirmed.

/// The deletion limit in force: the configured number, else 10 % of the directory users but at
/// least 5 (product.md §3.6).
pub fn deletion_limit(configured: Option<u32>, directory_users: usize) -> u64 {
    configured
        .map(u64::from)
        .unwrap_or_else(|| ((directory_users as u64) * 10).div_ceil(100).max(5))
}
