//! The rotation engine.

/// Placeholder replaced by the engine.
pub struct Engine;
