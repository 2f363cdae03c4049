//! shared CLI code
