//! The storage conformance suite on PostgreSQL: each case gets a fresh database on the
//! server named by `HERALD_TEST_POSTGRES_URL` (set by `cargo xtask test` / `cargo xtask pg`).

use herald_store_postgres::test_support;

// `test_support::fresh_store` returns the migrated store and the `TestDatabase` guard, which
// drops the database when the case passes and keeps it when it fails.
herald_store::conformance_suite!(test_support::fresh_store);
