//! rampart-report
