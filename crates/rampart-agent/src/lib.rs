//! Rampart agent runtime.
