//! Findings about policies that load but probably do not do what their author meant.
