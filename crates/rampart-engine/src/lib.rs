//! rampart-engine
