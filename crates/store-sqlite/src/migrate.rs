//! Schema migrations, embedded in the binary and applied in order inside the caller's
//! write transaction (so two processes starting together apply each migration once).

use herald_store::{StoreError, StoreResult};

use crate::{Tx, db_error};

/// `(version, name, SQL)`, in order. Append only: a released migration never changes.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "foundation", include_str!("../migrations/0001_foundation.sql")),
    (2, "inbound", include_str!("../migrations/0002_inbound.sql")),
    (3, "campaigns", include_str!("../migrations/0003_campaigns.sql")),
    (4, "email", include_str!("../migrations/0004_email.sql")),
    (5, "webhooks", include_str!("../migrations/0005_webhooks.sql")),
    (6, "campaign_webhooks", include_str!("../migrations/0006_campaign_webhooks.sql")),
    (7, "actions", include_str!("../migrations/0007_actions.sql")),
    (8, "conversions", include_str!("../migrations/0008_conversions.sql")),
    (9, "drafts", include_str!("../migrations/0009_drafts.sql")),
    (10, "endpoints", include_str!("../migrations/0010_endpoints.sql")),
    (11, "users", include_str!("../migrations/0011_users.sql")),
    (12, "delivery_filters", include_str!("../migrations/0012_delivery_filters.sql")),
    (13, "login_links", include_str!("../migrations/0013_login_links.sql")),
    (14, "sealed_documents", include_str!("../migrations/0014_sealed_documents.sql")),
    (15, "bounces", include_str!("../migrations/0015_bounces.sql")),
    (16, "message_activity", include_str!("../migrations/0016_message_activity.sql")),
    (19, "tracking", include_str!("../migrations/0019_tracking.sql")),
    (20, "topics", include_str!("../migrations/0020_topics.sql")),
    (21, "templates", include_str!("../migrations/0021_templates.sql")),
    (22, "segments", include_str!("../migrations/0022_segments.sql")),
    (23, "tracked_hits", include_str!("../migrations/0023_tracked_hits.sql")),
    (24, "broadcasts", include_str!("../migrations/0024_broadcasts.sql")),
];

pub(crate) async fn apply(tx: &mut Tx) -> StoreResult<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS herald_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL) STRICT",
    )
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM herald_migrations ORDER BY version")
        .fetch_all(&mut **tx)
        .await
        .map_err(db_error)?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if let Some(&newest) = applied.last()
        && newest > known
    {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {newest}, newer than this herald binary knows ({known}); run a newer herald"
        )));
    }
    for &(version, name, sql) in MIGRATIONS.iter().filter(|m| !applied.contains(&m.0)) {
        tracing::info!(version, name, "applying migration");
        sqlx::raw_sql(sql).execute(&mut **tx).await.map_err(db_error)?;
        sqlx::query("INSERT INTO herald_migrations (version, name) VALUES (?, ?)")
            .bind(version)
            .bind(name)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}
