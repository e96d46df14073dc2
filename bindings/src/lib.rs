//! Python bindings for miyabi-aws (`miyabi_aws._native`), built by maturin.
//!
//! Not built yet: the bindings, the wheel and the PyO3 bridge are the next issue. The crate is
//! kept in the workspace so that its place in the layout is fixed.
