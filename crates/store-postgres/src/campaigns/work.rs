//! The journey work commit on PostgreSQL: what the campaign worker decided for a batch of
//! journeys (moves, new journeys, messages, webhook drafts and calls, the step log, jobs,
//! contact attributes, event outcomes), written in one transaction.

use herald_domain::{JourneyStatus, Timestamp, WorkspaceId};
use herald_store::campaign::{JourneyUpdate, WorkCommit, jobs_by_lease, new_jobs_by_workspace};
use herald_store::secrets::{Document, columns};
use herald_store::{StoreError, StoreResult};
use serde_json::json;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use super::{INSERT_CHUNK, messages};
use crate::encode;
use crate::jobs::insert_jobs;
use crate::rows::corrupt;
use crate::{PgStore, Tx, db_error, savepoint, settle};

/// Writes the work commits `items` inside the caller's transaction: per item the statements
/// that can refuse it (the job's lease, the journeys' expected places), then every item's
/// inserts as multi-row statements. A refused item fails the whole call; the caller then
/// retries item by item.
async fn write_work_commits(tx: &mut Tx, items: &[WorkCommit<'_>], now: Timestamp) -> StoreResult<()> {
    let at = encode::ts(now);
    // Jobs claimed together share a lease: complete them with one statement per claim.
    for ((lease, workspace), jobs) in jobs_by_lease(items) {
        let jobs: Vec<Uuid> = jobs.iter().map(|j| j.as_uuid()).collect();
        let finished = sqlx::query(
            "UPDATE jobs SET state = 'done', due_at = NULL, lease_id = NULL, leased_by = NULL, updated_at = $1 \
             WHERE lease_id = $2 AND workspace_id = $3 AND id = ANY($4)",
        )
        .bind(at)
        .bind(lease.as_uuid())
        .bind(workspace.as_uuid())
        .bind(&jobs)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
        if finished.rows_affected() != jobs.len() as u64 {
            return Err(StoreError::LeaseLost);
        }
    }
    for item in items {
        for u in &item.work.updates {
            update_journey(tx, item.workspace, u, now).await?;
        }
    }
    let journeys: Vec<_> = items.iter().flat_map(|i| i.work.journeys.iter().map(move |j| (i.workspace, j))).collect();
    for chunk in journeys.chunks(INSERT_CHUNK) {
        let mut insert = QueryBuilder::<Postgres>::new(
            "INSERT INTO journeys (id, workspace_id, campaign_id, version, contact_id, event_id, status, exclusive, \
             step, run_at, custom_variables, entered_at, goal_until, updated_at) ",
        );
        let mut rows = Vec::with_capacity(chunk.len());
        for (workspace, j) in chunk {
            let version = i32::try_from(j.version).map_err(|e| corrupt("version", e))?;
            let step = i32::try_from(j.step).map_err(|e| corrupt("step", e))?;
            rows.push((workspace, j, version, step));
        }
        insert.push_values(rows, |mut row, (workspace, j, version, step)| {
            row.push_bind(j.id.as_uuid())
                .push_bind(workspace.as_uuid())
                .push_bind(j.campaign_id.as_uuid())
                .push_bind(version)
                .push_bind(j.contact_id.as_uuid())
                .push_bind(j.event_id.map(|e| e.as_uuid()))
                .push_bind("active")
                .push_bind(j.exclusive)
                .push_bind(step)
                .push_bind(encode::ts(j.run_at))
                .push_bind(Json(encode::json_map(&j.custom_variables).into_owned()))
                .push_bind(at)
                .push_bind(j.goal_until.map(encode::ts))
                .push_bind(at);
        });
        insert.build().execute(&mut **tx).await.map_err(db_error)?;
    }
    let messages: Vec<_> = items.iter().flat_map(|i| i.work.messages.iter().map(move |m| (i.workspace, m))).collect();
    messages::insert(tx, &messages).await?;
    let drafts: Vec<_> = items.iter().flat_map(|i| i.work.drafts.iter()).collect();
    for chunk in drafts.chunks(INSERT_CHUNK) {
        let mut insert = QueryBuilder::<Postgres>::new(
            "INSERT INTO webhook_drafts (id, workspace_id, journey_id, campaign_id, contact_id, step, request, call, \
             sealed_with, created_at) ",
        );
        let keys = tx.secrets.clone();
        insert.push_values(chunk, |mut row, d| {
            let call = keys.seal_document(Document::Call, columns::DRAFT_CALL, &d.call);
            row.push_bind(d.id.as_uuid())
                .push_bind(d.workspace_id.as_uuid())
                .push_bind(d.journey_id.as_uuid())
                .push_bind(d.campaign_id.as_uuid())
                .push_bind(d.contact_id.as_uuid())
                .push_bind(encode::text(&d.step).into_owned())
                .push_bind(Json(encode::json(&d.request).into_owned()))
                .push_bind(Json(encode::json(&call.value).into_owned()))
                .push_bind(call.key.map(str::to_owned))
                .push_bind(encode::ts(d.created_at));
        });
        insert.build().execute(&mut **tx).await.map_err(db_error)?;
    }
    for item in items {
        let calls: Vec<_> = item.work.calls.iter().map(|c| (item.workspace, c)).collect();
        crate::webhooks::record_calls(tx, &calls, now).await?;
    }
    let steps: Vec<_> = items.iter().flat_map(|i| i.work.steps.iter()).collect();
    for chunk in steps.chunks(INSERT_CHUNK) {
        let mut insert = QueryBuilder::<Postgres>::new(
            "INSERT INTO journey_steps (journey_id, campaign_id, step, outcome, detail, message_id, at) ",
        );
        insert.push_values(chunk, |mut row, s| {
            row.push_bind(s.journey_id.as_uuid())
                .push_bind(s.campaign_id.as_uuid())
                .push_bind(encode::text(&s.step).into_owned())
                .push_bind(s.outcome.clone())
                .push_bind(Json(encode::json(&s.detail).into_owned()))
                .push_bind(s.message_id.map(|m| m.as_uuid()))
                .push_bind(encode::ts(s.at));
        });
        insert.build().execute(&mut **tx).await.map_err(db_error)?;
    }
    for (workspace, jobs) in new_jobs_by_workspace(items) {
        insert_jobs(tx, workspace, &jobs, now).await?;
    }
    for item in items {
        for a in &item.work.attributes {
            let attribute = encode::text(&a.attribute);
            let query = match &a.value {
                Some(value) => sqlx::query(
                    "UPDATE contacts SET attributes = jsonb_set(attributes, ARRAY[$1], $2), updated_at = $3 \
                     WHERE id = $4 AND workspace_id = $5",
                )
                .bind(attribute)
                .bind(Json(encode::json(value))),
                None => sqlx::query(
                    "UPDATE contacts SET attributes = attributes - $1, updated_at = $2 WHERE id = $3 AND workspace_id = $4",
                )
                .bind(attribute),
            };
            query
                .bind(at)
                .bind(a.contact_id.as_uuid())
                .bind(item.workspace.as_uuid())
                .execute(&mut **tx)
                .await
                .map_err(db_error)?;
        }
        let changed: Vec<_> = item.work.attributes.iter().map(|a| a.contact_id).collect();
        crate::contacts::enqueue_refresh(tx, item.workspace, &changed, now).await?;
        for (event, reactions) in &item.work.reactions {
            sqlx::query(
                "UPDATE events SET outcome = jsonb_set(outcome, '{campaigns}', $1) WHERE id = $2 AND workspace_id = $3",
            )
            .bind(Json(encode::json(&json!(reactions))))
            .bind(event.as_uuid())
            .bind(item.workspace.as_uuid())
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        }
    }
    Ok(())
}

/// Moves a journey if it is still where the writer saw it (`Conflict` `journey_moved` if not).
async fn update_journey(tx: &mut Tx, workspace: WorkspaceId, u: &JourneyUpdate, now: Timestamp) -> StoreResult<()> {
    let (guard, expect_step, expect_run_at) = match u.expect {
        Some((step, run_at)) => (true, step, run_at),
        None => (false, None, None),
    };
    let step = |s: Option<u32>| s.map(i32::try_from).transpose().map_err(|e| corrupt("step", e));
    let updated = sqlx::query(
        "UPDATE journeys SET status = $1, step = $2, run_at = $3, held = $4, \
         custom_variables = COALESCE($5, custom_variables), exit_reason = COALESCE($6, exit_reason), \
         converted_at = CASE WHEN $7 AND converted_at IS NULL THEN $8 ELSE converted_at END, \
         conversion_step = COALESCE($15, conversion_step), ended_at = CASE WHEN $9 THEN COALESCE(ended_at, $8) ELSE NULL END, updated_at = $8 \
         WHERE id = $10 AND workspace_id = $11 AND status = 'active' \
         AND (NOT $12 OR (step IS NOT DISTINCT FROM $13 AND run_at IS NOT DISTINCT FROM $14))",
    )
    .bind(u.status.as_str())
    .bind(step(u.step)?)
    .bind(u.run_at.map(encode::ts))
    .bind(u.held)
    .bind(u.custom_variables.as_ref().map(|v| Json(encode::json_map(v))))
    .bind(u.exit_reason.as_deref().map(encode::text))
    .bind(u.converted)
    .bind(encode::ts(now))
    .bind(u.status != JourneyStatus::Active)
    .bind(u.id.as_uuid())
    .bind(workspace.as_uuid())
    .bind(guard)
    .bind(step(expect_step)?)
    .bind(expect_run_at.map(encode::ts))
    .bind(u.conversion_step.as_deref())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::Conflict { constraint: "journey_moved".into() });
    }
    Ok(())
}

/// Writes `items` in one transaction; if any is refused, writes them one by one instead, each
/// under a savepoint, so that a refused item is its own result and the others still commit.
pub(super) async fn commit_batch(
    store: &PgStore,
    items: &[WorkCommit<'_>],
    now: Timestamp,
) -> StoreResult<Vec<StoreResult<()>>> {
    let mut tx = store.begin().await?;
    match write_work_commits(&mut tx, items, now).await {
        Ok(()) => {
            tx.commit().await.map_err(db_error)?;
            return Ok(items.iter().map(|_| Ok(())).collect());
        }
        Err(StoreError::LeaseLost | StoreError::Conflict { .. }) => tx.rollback().await.map_err(db_error)?,
        Err(e) => return Err(e),
    }
    // Some item was refused: write them one by one, each under a savepoint.
    let mut tx = store.begin().await?;
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        savepoint(&mut tx).await?;
        match write_work_commits(&mut tx, std::slice::from_ref(item), now).await {
            // Only a refusal is the item's own; anything else fails the batch.
            Err(e) if !matches!(e, StoreError::LeaseLost | StoreError::Conflict { .. }) => return Err(e),
            applied => results.push(settle(&mut tx, applied).await?),
        }
    }
    tx.commit().await.map_err(db_error)?;
    Ok(results)
}
