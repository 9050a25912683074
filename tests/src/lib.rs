//! Test support for regsync integration tests.
