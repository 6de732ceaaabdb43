//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!` embeds the
//! migration directories at compile time, and cargo does not watch them by itself (a new
//! migration file alone left a build without it).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
