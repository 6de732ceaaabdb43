//! The `rampart` binary: wires the library crates together behind one CLI.

fn main() {}
