//! Conformance suite and test fixtures for alation-rotator TokenSink implementations
