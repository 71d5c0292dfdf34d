//! The journey work commit on SQLite: what the campaign worker decided for a batch of
//! journeys (moves, new journeys, messages, webhook drafts and calls, the step log, jobs,
//! contact attributes, event outcomes), written in one transaction.

use herald_domain::job::JobOutcome;
use herald_domain::{JourneyStatus, Timestamp, WorkspaceId};
use herald_store::campaign::{AttributeChange, JourneyUpdate, WorkCommit, new_jobs_by_workspace};
use herald_store::secrets::{Document, columns};
use herald_store::{StoreError, StoreResult};
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite};

use super::messages;
use crate::jobs::{finish_all, insert_jobs};
use crate::{CHUNK, SqliteStore, Tx, db_error};

/// Writes the work commits `items` inside the caller's transaction: per item the statements
/// that can refuse it (the job's lease, the journeys' expected places), then every item's
/// inserts as multi-row statements. A refused item fails the whole call; the caller then
/// retries item by item.
async fn write_work_commits(tx: &mut Tx, items: &[WorkCommit<'_>], now: Timestamp) -> StoreResult<()> {
    let done: Vec<_> =
        items.iter().filter_map(|i| i.lease.map(|lease| (i.workspace, lease, &JobOutcome::Done))).collect();
    finish_all(tx, &done, now).await?;
    let updates: Vec<_> = items.iter().flat_map(|i| i.work.updates.iter().map(move |u| (i.workspace, u))).collect();
    for chunk in updates.chunks(CHUNK) {
        update_journeys(tx, chunk, now).await?;
    }
    let journeys: Vec<_> = items.iter().flat_map(|i| i.work.journeys.iter().map(move |j| (i.workspace, j))).collect();
    for chunk in journeys.chunks(CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO journeys (id, workspace_id, campaign_id, version, contact_id, event_id, status, exclusive, \
             step, run_at, custom_variables, entered_at, goal_until, updated_at) ",
        );
        insert.push_values(chunk, |mut row, (workspace, j)| {
            row.push_bind(j.id.as_uuid())
                .push_bind(workspace.as_uuid())
                .push_bind(j.campaign_id.as_uuid())
                .push_bind(i64::from(j.version))
                .push_bind(j.contact_id.as_uuid())
                .push_bind(j.event_id.map(|e| e.as_uuid()))
                .push_bind("active")
                .push_bind(i64::from(j.exclusive))
                .push_bind(i64::from(j.step))
                .push_bind(j.run_at.unix_millis())
                .push_bind(Value::Object(j.custom_variables.clone()).to_string())
                .push_bind(now.unix_millis())
                .push_bind(j.goal_until.map(Timestamp::unix_millis))
                .push_bind(now.unix_millis());
        });
        insert.build().execute(&mut **tx).await.map_err(db_error)?;
    }
    let messages: Vec<_> = items.iter().flat_map(|i| i.work.messages.iter().map(move |m| (i.workspace, m))).collect();
    messages::insert(tx, &messages).await?;
    let drafts: Vec<_> = items.iter().flat_map(|i| i.work.drafts.iter()).collect();
    for chunk in drafts.chunks(CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO webhook_drafts (id, workspace_id, journey_id, campaign_id, contact_id, step, request, call, \
             sealed_with, created_at) ",
        );
        let secrets = tx.secrets.clone();
        insert.push_values(chunk, |mut row, d| {
            let call = secrets.seal_document(Document::Call, columns::DRAFT_CALL, &d.call);
            row.push_bind(d.id.as_uuid())
                .push_bind(d.workspace_id.as_uuid())
                .push_bind(d.journey_id.as_uuid())
                .push_bind(d.campaign_id.as_uuid())
                .push_bind(d.contact_id.as_uuid())
                .push_bind(d.step.clone())
                .push_bind(d.request.to_string())
                .push_bind(call.value.to_string())
                .push_bind(call.key.map(str::to_owned))
                .push_bind(d.created_at.unix_millis());
        });
        insert.build().execute(&mut **tx).await.map_err(db_error)?;
    }
    let calls: Vec<_> = items.iter().flat_map(|i| i.work.calls.iter().map(move |c| (i.workspace, c))).collect();
    crate::webhooks::record_calls(tx, &calls, now).await?;
    let steps: Vec<_> = items.iter().flat_map(|i| i.work.steps.iter()).collect();
    for chunk in steps.chunks(CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO journey_steps (journey_id, campaign_id, step, outcome, detail, message_id, at) ",
        );
        insert.push_values(chunk, |mut row, s| {
            row.push_bind(s.journey_id.as_uuid())
                .push_bind(s.campaign_id.as_uuid())
                .push_bind(s.step.clone())
                .push_bind(s.outcome.clone())
                .push_bind(s.detail.to_string())
                .push_bind(s.message_id.map(|m| m.as_uuid()))
                .push_bind(s.at.unix_millis());
        });
        insert.build().execute(&mut **tx).await.map_err(db_error)?;
    }
    for (workspace, jobs) in new_jobs_by_workspace(items) {
        insert_jobs(tx, workspace, &jobs, now).await?;
    }
    for item in items {
        for a in &item.work.attributes {
            set_attribute(tx, item.workspace, a, now).await?;
        }
        let changed: Vec<_> = item.work.attributes.iter().map(|a| a.contact_id).collect();
        crate::segments::enqueue_refresh(tx, item.workspace, &changed, now).await?;
        for (event, reactions) in &item.work.reactions {
            sqlx::query(
                "UPDATE events SET outcome = json_set(outcome, '$.campaigns', json(?)) WHERE id = ? AND workspace_id = ?",
            )
            .bind(json!(reactions).to_string())
            .bind(event.as_uuid())
            .bind(item.workspace.as_uuid())
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        }
    }
    Ok(())
}

/// Moves journeys, in one statement, if each is still where the writer saw it (`Conflict`
/// `journey_moved` if any is not, or if two updates name the same journey).
async fn update_journeys(tx: &mut Tx, updates: &[(WorkspaceId, &JourneyUpdate)], now: Timestamp) -> StoreResult<()> {
    let mut update = QueryBuilder::<Sqlite>::new(
        "WITH u (id, workspace_id, status, step, run_at, held, custom_variables, exit_reason, converted, \
         conversion_step, ended, guarded, expect_step, expect_run_at) AS (",
    );
    update.push_values(updates, |mut row, (workspace, u)| {
        let (guarded, expect_step, expect_run_at) = match u.expect {
            Some((step, run_at)) => (true, step.map(i64::from), run_at.map(Timestamp::unix_millis)),
            None => (false, None, None),
        };
        row.push_bind(u.id.as_uuid())
            .push_bind(workspace.as_uuid())
            .push_bind(u.status.as_str())
            .push_bind(u.step.map(i64::from))
            .push_bind(u.run_at.map(Timestamp::unix_millis))
            .push_bind(i64::from(u.held))
            .push_bind(u.custom_variables.as_ref().map(|v| Value::Object(v.clone()).to_string()))
            .push_bind(u.exit_reason.clone())
            .push_bind(u.converted)
            .push_bind(u.conversion_step.clone())
            .push_bind(u.status != JourneyStatus::Active)
            .push_bind(guarded)
            .push_bind(expect_step)
            .push_bind(expect_run_at);
    });
    update
        .push(
            ") UPDATE journeys SET status = u.status, step = u.step, run_at = u.run_at, held = u.held, \
             custom_variables = COALESCE(u.custom_variables, journeys.custom_variables), \
             exit_reason = COALESCE(u.exit_reason, journeys.exit_reason), \
             converted_at = CASE WHEN u.converted AND journeys.converted_at IS NULL THEN ",
        )
        .push_bind(now.unix_millis())
        .push(
            " ELSE journeys.converted_at END, conversion_step = COALESCE(u.conversion_step, journeys.conversion_step), \
             ended_at = CASE WHEN u.ended THEN COALESCE(journeys.ended_at, ",
        )
        .push_bind(now.unix_millis())
        .push(") ELSE NULL END, updated_at = ")
        .push_bind(now.unix_millis())
        .push(
            " FROM u WHERE journeys.id = u.id AND journeys.workspace_id = u.workspace_id \
             AND journeys.status = 'active' \
             AND (NOT u.guarded OR (journeys.step IS u.expect_step AND journeys.run_at IS u.expect_run_at))",
        );
    let updated = update.build().execute(&mut **tx).await.map_err(db_error)?;
    if updated.rows_affected() != updates.len() as u64 {
        return Err(StoreError::Conflict { constraint: "journey_moved".into() });
    }
    Ok(())
}

async fn set_attribute(tx: &mut Tx, workspace: WorkspaceId, a: &AttributeChange, now: Timestamp) -> StoreResult<()> {
    let sql = match &a.value {
        Some(_) => {
            "UPDATE contacts SET attributes = json_set(attributes, '$.' || json_quote(?), json(?)), updated_at = ? \
             WHERE id = ? AND workspace_id = ?"
        }
        None => {
            "UPDATE contacts SET attributes = json_remove(attributes, '$.' || json_quote(?)), updated_at = ? \
             WHERE id = ? AND workspace_id = ?"
        }
    };
    let mut query = sqlx::query(sql).bind(&a.attribute);
    if let Some(value) = &a.value {
        query = query.bind(value.to_string());
    }
    query
        .bind(now.unix_millis())
        .bind(a.contact_id.as_uuid())
        .bind(workspace.as_uuid())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Writes `items` in one transaction; if any is refused, writes them one by one instead (see
/// [`crate::batch_or_each`]), so that a refused item is its own result and the others still
/// commit.
pub(super) async fn commit_batch(
    store: &SqliteStore,
    items: &[WorkCommit<'_>],
    now: Timestamp,
) -> StoreResult<Vec<StoreResult<()>>> {
    // Only a refusal is an item's own; anything else fails the batch.
    crate::batch_or_each(
        store,
        items,
        |tx, items| Box::pin(async move { write_work_commits(tx, items, now).await.map(|()| vec![(); items.len()]) }),
        |e| matches!(e, StoreError::LeaseLost | StoreError::Conflict { .. }),
    )
    .await
}
