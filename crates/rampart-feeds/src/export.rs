//! Exports that read the store: every live indicator, page by page, judged by the allowlists
//! and decay models in force, written in one format.

use std::io::{self, Write};

use rampart_intel::allowlist::Allowlists;
use rampart_intel::export::{Excluded, ExportFormat, ExportSummary, from_row, write_export};
use rampart_intel::score;
use rampart_store::Store;

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] rampart_store::StoreError),
    /// The output could not be written.
    #[error("cannot write the export: {0}")]
    Io(#[from] io::Error),
}

/// Exports every live indicator scoring at least `min_score` (under `decay`) and not covered
/// by `allow`. Rows are read in batches, so the store is never held for the length of the
/// write.
pub async fn export_all(
    store: &Store,
    allow: &Allowlists,
    decay: &score::DecayModels,
    format: ExportFormat,
    min_score: u8,
    at: i64,
    out: &mut (dyn Write + Send),
) -> Result<ExportSummary, ExportError> {
    let mut items = Vec::new();
    let mut excluded = Excluded {
        min_score,
        ..Excluded::default()
    };
    store
        .intel_export_rows(at, 50_000, &mut |row| {
            let item = from_row(row, at, decay);
            if item.score < min_score {
                excluded.below_min_score += 1;
            } else if allow.check(&item.ioc).is_some() {
                excluded.allowlisted += 1;
            } else {
                items.push(item);
            }
        })
        .await?;
    Ok(write_export(format, &items, excluded, at, out)?)
}
