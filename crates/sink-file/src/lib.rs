//! Local-file TokenSink for alation-rotator
