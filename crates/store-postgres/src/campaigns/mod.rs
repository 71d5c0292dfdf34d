//! Campaigns, journeys, the step log and messages on PostgreSQL: campaigns and their
//! versions and the journey queries here, the work commit in [`work`], messages in
//! [`messages`].

pub(crate) mod messages;
mod work;

use async_trait::async_trait;
use herald_domain::job::JobKind;
use herald_domain::{
    Campaign, CampaignId, CampaignState, ContactId, EmailSummary, EventId, Journey, JourneyId, JourneyStatus, Message,
    MessageId, NewJob, Page, PageRequest, Timestamp, WorkspaceId,
};
use herald_store::campaign::{ARCHIVED, CampaignStats, CampaignStore, JourneyContext, MessageFilter, WorkCommit};
use herald_store::secrets::{Document, SecretKeys, columns};
use herald_store::{StoreError, StoreResult, new_uuid};
use serde_json::{Value, json};
use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use crate::encode;
use crate::jobs::insert_jobs;
use crate::rows::{contact_at, corrupt, count, document, event_at, get, object, opt_ts, opt_uuid, ts, uuid};
use crate::{PgStore, Tx, db_error};

/// Rows per multi-row INSERT: at most 19 parameters a row stays under PostgreSQL's 65,535.
const INSERT_CHUNK: usize = 1000;

const CAMPAIGN_NOT_FOUND: StoreError = StoreError::NotFound { entity: "campaign" };

macro_rules! campaign_select {
    () => {
        "SELECT c.id, c.workspace_id, c.name, c.state, c.version, c.created_at, c.updated_at, v.document \
         FROM campaigns c JOIN campaign_versions v ON v.campaign_id = c.id AND v.version = c.version "
    };
}

macro_rules! journey_columns {
    () => {
        "id, workspace_id, campaign_id, version, contact_id, event_id, status, step, run_at, held, custom_variables, \
         entered_at, ended_at, exit_reason, converted_at, goal_until, conversion_step"
    };
}

/// The start of a [`JourneyContext`] query (append the `WHERE`): the journey's own columns,
/// then the campaign's (`campaign_*`), the contact's (`ct_*`) and the event's (`e_*`).
macro_rules! journey_context_select {
    () => {
        "SELECT j.id, j.workspace_id, j.campaign_id, j.version, j.contact_id, \
         j.event_id, j.status, j.step, j.run_at, j.held, j.custom_variables, j.entered_at, j.ended_at, j.exit_reason, \
         j.converted_at, j.goal_until, j.conversion_step, c.name AS campaign_name, c.state AS campaign_state, w.timezone AS workspace_timezone, \
         ct.id AS ct_id, ct.workspace_id AS ct_workspace_id, ct.email AS ct_email, ct.user_id AS ct_user_id, \
         ct.phone AS ct_phone, ct.name AS ct_name, ct.first_name AS ct_first_name, ct.last_name AS ct_last_name, \
         ct.attributes AS ct_attributes, ct.created_at AS ct_created_at, ct.updated_at AS ct_updated_at, \
         e.id AS e_id, e.workspace_id AS e_workspace_id, e.source_id AS e_source_id, e.contact_id AS e_contact_id, \
         e.name AS e_name, e.properties AS e_properties, e.occurred_at AS e_occurred_at, e.received_at AS e_received_at, \
         e.idempotency_key AS e_idempotency_key, e.outcome AS e_outcome, \
         EXISTS (SELECT 1 FROM suppressions s WHERE s.workspace_id = j.workspace_id AND s.email = ct.email) AS suppressed, \
         EXISTS (SELECT 1 FROM transports t WHERE t.workspace_id = j.workspace_id) AS workspace_smtp \
         FROM journeys j JOIN campaigns c ON c.id = j.campaign_id JOIN contacts ct ON ct.id = j.contact_id \
         JOIN workspaces w ON w.id = j.workspace_id \
         LEFT JOIN events e ON e.id = j.event_id "
    };
}

fn parse<T: std::str::FromStr<Err = String>>(row: &PgRow, column: &str) -> StoreResult<T> {
    get::<String>(row, column)?.parse().map_err(|e: String| corrupt(column, e))
}

fn number(row: &PgRow, column: &str) -> StoreResult<u32> {
    u32::try_from(get::<i32>(row, column)?).map_err(|e| corrupt(column, e))
}

fn campaign(row: &PgRow, keys: &SecretKeys) -> StoreResult<Campaign> {
    Ok(Campaign {
        id: CampaignId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        name: get(row, "name")?,
        state: parse(row, "state")?,
        version: number(row, "version")?,
        document: document(row, "document", keys, Document::Campaign, columns::CAMPAIGN_DOCUMENT)?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

fn journey(row: &PgRow) -> StoreResult<Journey> {
    Ok(Journey {
        id: JourneyId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        campaign_id: CampaignId::from_uuid(uuid(row, "campaign_id")?),
        version: number(row, "version")?,
        contact_id: ContactId::from_uuid(uuid(row, "contact_id")?),
        event_id: opt_uuid(row, "event_id")?.map(EventId::from_uuid),
        status: parse(row, "status")?,
        step: get::<Option<i32>>(row, "step")?.map(|s| u32::try_from(s).map_err(|e| corrupt("step", e))).transpose()?,
        run_at: opt_ts(row, "run_at")?,
        held: get(row, "held")?,
        custom_variables: object(row, "custom_variables")?,
        entered_at: ts(row, "entered_at")?,
        ended_at: opt_ts(row, "ended_at")?,
        exit_reason: get(row, "exit_reason")?,
        converted_at: opt_ts(row, "converted_at")?,
        goal_until: opt_ts(row, "goal_until")?,
        conversion_step: get(row, "conversion_step")?,
    })
}

async fn load_campaign(
    conn: &mut PgConnection,
    keys: &SecretKeys,
    workspace: WorkspaceId,
    id: CampaignId,
) -> StoreResult<Campaign> {
    let row = sqlx::query(concat!(campaign_select!(), "WHERE c.workspace_id = $1 AND c.id = $2"))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(conn)
        .await
        .map_err(db_error)?
        .ok_or(CAMPAIGN_NOT_FOUND)?;
    campaign(&row, keys)
}

/// The campaign row locked for the rest of the transaction.
async fn lock_campaign(tx: &mut Tx, workspace: WorkspaceId, id: CampaignId) -> StoreResult<Campaign> {
    sqlx::query("SELECT 1 FROM campaigns WHERE workspace_id = $1 AND id = $2 FOR UPDATE")
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?
        .ok_or(CAMPAIGN_NOT_FOUND)?;
    let keys = tx.secrets.clone();
    load_campaign(tx, &keys, workspace, id).await
}

async fn insert_version(
    tx: &mut Tx,
    id: CampaignId,
    version: u32,
    document: &Value,
    now: Timestamp,
) -> StoreResult<()> {
    let keys = tx.secrets.clone();
    let sealed = keys.seal_document(Document::Campaign, columns::CAMPAIGN_DOCUMENT, document);
    sqlx::query(
        "INSERT INTO campaign_versions (campaign_id, version, document, sealed_with, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id.as_uuid())
    .bind(i32::try_from(version).map_err(|e| corrupt("version", e))?)
    .bind(Json(encode::json(&sealed.value)))
    .bind(sealed.key)
    .bind(encode::ts(now))
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Gives held journeys of `campaign` their step jobs back (on resume).
async fn release_held(tx: &mut Tx, workspace: WorkspaceId, campaign: CampaignId, now: Timestamp) -> StoreResult<()> {
    let held = sqlx::query(
        "UPDATE journeys SET held = false, updated_at = $2 WHERE campaign_id = $1 AND held RETURNING id, step, run_at",
    )
    .bind(campaign.as_uuid())
    .bind(encode::ts(now))
    .fetch_all(&mut **tx)
    .await
    .map_err(db_error)?;
    let mut jobs = Vec::with_capacity(held.len());
    for row in &held {
        let id = JourneyId::from_uuid(uuid(row, "id")?);
        let step = get::<Option<i32>>(row, "step")?;
        let run_at = opt_ts(row, "run_at")?;
        jobs.push(NewJob::new(JobKind::JourneyStep, json!({"journey": id, "step": step, "run_at": run_at}), now));
    }
    insert_jobs(tx, workspace, &jobs, now).await?;
    Ok(())
}

#[async_trait]
impl CampaignStore for PgStore {
    async fn create_campaign(
        &self,
        workspace: WorkspaceId,
        name: &str,
        document: &Value,
        now: Timestamp,
    ) -> StoreResult<Campaign> {
        let id = CampaignId::from_uuid(new_uuid(now));
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO campaigns (id, workspace_id, name, state, version, created_at, updated_at) \
             VALUES ($1, $2, $3, 'draft', 1, $4, $4)",
        )
        .bind(id.as_uuid())
        .bind(workspace.as_uuid())
        .bind(encode::text(name))
        .bind(encode::ts(now))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        insert_version(&mut tx, id, 1, document, now).await?;
        let created = load_campaign(&mut tx, &self.secrets, workspace, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(created)
    }

    async fn list_campaigns(
        &self,
        workspace: WorkspaceId,
        page: PageRequest<CampaignId>,
    ) -> StoreResult<Page<Campaign>> {
        let rows =
            sqlx::query(concat!(campaign_select!(), "WHERE c.workspace_id = $1 AND c.id > $2 ORDER BY c.id LIMIT $3"))
                .bind(workspace.as_uuid())
                .bind(page.after.map_or(Uuid::nil(), |id| id.as_uuid()))
                .bind(i64::from(page.limit) + 1)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
        let campaigns = rows.iter().map(|row| campaign(row, &self.secrets)).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(campaigns, page.limit, |c| c.id))
    }

    async fn get_campaign(&self, workspace: WorkspaceId, id: CampaignId) -> StoreResult<Campaign> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        load_campaign(&mut conn, &self.secrets, workspace, id).await
    }

    async fn campaign_version(&self, workspace: WorkspaceId, id: CampaignId, version: u32) -> StoreResult<Value> {
        let Json(mut document): Json<Value> = sqlx::query_scalar(
            "SELECT v.document FROM campaign_versions v JOIN campaigns c ON c.id = v.campaign_id \
             WHERE c.workspace_id = $1 AND v.campaign_id = $2 AND v.version = $3",
        )
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .bind(i32::try_from(version).map_err(|e| corrupt("version", e))?)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .ok_or(StoreError::NotFound { entity: "campaign version" })?;
        self.secrets.open_document(Document::Campaign, columns::CAMPAIGN_DOCUMENT, &mut document)?;
        Ok(document)
    }

    async fn update_campaign(
        &self,
        workspace: WorkspaceId,
        id: CampaignId,
        name: &str,
        document: &Value,
        now: Timestamp,
    ) -> StoreResult<Campaign> {
        let mut tx = self.begin().await?;
        let current = lock_campaign(&mut tx, workspace, id).await?;
        if current.state == CampaignState::Archived {
            return Err(StoreError::Conflict { constraint: "campaign_archived".into() });
        }
        let version = current.version + 1;
        insert_version(&mut tx, id, version, document, now).await?;
        sqlx::query("UPDATE campaigns SET name = $1, version = $2, updated_at = $3 WHERE id = $4")
            .bind(encode::text(name))
            .bind(i32::try_from(version).map_err(|e| corrupt("version", e))?)
            .bind(encode::ts(now))
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let updated = load_campaign(&mut tx, &self.secrets, workspace, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(updated)
    }

    async fn set_campaign_state(
        &self,
        workspace: WorkspaceId,
        id: CampaignId,
        from: &[CampaignState],
        to: CampaignState,
        now: Timestamp,
    ) -> StoreResult<Campaign> {
        let mut tx = self.begin().await?;
        let current = lock_campaign(&mut tx, workspace, id).await?;
        if !from.contains(&current.state) {
            return Err(StoreError::Conflict { constraint: "campaign_state".into() });
        }
        sqlx::query("UPDATE campaigns SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(to.as_str())
            .bind(encode::ts(now))
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        match to {
            CampaignState::Active => release_held(&mut tx, workspace, id, now).await?,
            CampaignState::Archived => {
                let exited = sqlx::query(
                    "UPDATE journeys SET status = 'exited', exit_reason = $3, ended_at = $1, \
                     step = NULL, run_at = NULL, held = false, updated_at = $1 WHERE campaign_id = $2 AND status = 'active'",
                )
                .bind(encode::ts(now))
                .bind(id.as_uuid())
                .bind(ARCHIVED)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if exited.rows_affected() > 0 {
                    let job = NewJob::new(JobKind::ArchiveExits, json!({ "campaign": id }), now);
                    insert_jobs(&mut tx, workspace, &[job], now).await?;
                }
            }
            CampaignState::Draft | CampaignState::Paused => {}
        }
        let changed = load_campaign(&mut tx, &self.secrets, workspace, id).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(changed)
    }

    async fn delete_campaign(&self, workspace: WorkspaceId, id: CampaignId) -> StoreResult<()> {
        let deleted = sqlx::query("DELETE FROM campaigns WHERE workspace_id = $1 AND id = $2")
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if deleted.rows_affected() == 0 {
            return Err(CAMPAIGN_NOT_FOUND);
        }
        Ok(())
    }

    async fn live_campaigns(&self, workspace: WorkspaceId) -> StoreResult<Vec<Campaign>> {
        let rows = sqlx::query(concat!(
            campaign_select!(),
            "WHERE c.workspace_id = $1 AND c.state IN ('active', 'paused') ORDER BY c.id"
        ))
        .bind(workspace.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(|row| campaign(row, &self.secrets)).collect()
    }

    async fn campaign_stats(&self, workspace: WorkspaceId, id: CampaignId) -> StoreResult<CampaignStats> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        load_campaign(&mut conn, &self.secrets, workspace, id).await?;
        let mut stats = CampaignStats::default();
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n, COUNT(converted_at) AS converted FROM journeys WHERE campaign_id = $1 GROUP BY status",
        )
        .bind(id.as_uuid())
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
        for row in &rows {
            let n: u64 = count(row, "n")?;
            stats.entered += n;
            stats.converted += count::<u64>(row, "converted")?;
            match parse::<JourneyStatus>(row, "status")? {
                JourneyStatus::Active => stats.active = n,
                JourneyStatus::Completed => stats.completed = n,
                JourneyStatus::Exited => stats.exited = n,
            }
        }
        let rows = sqlx::query(
            // An email step handed to SMTP is counted by what became of its message.
            "SELECT step, outcome, COUNT(*) AS n FROM journey_steps WHERE campaign_id = $1 AND outcome <> 'queued' \
             GROUP BY step, outcome \
             UNION ALL SELECT step, status AS outcome, COUNT(*) AS n FROM messages \
             WHERE campaign_id = $1 AND transport = 'smtp' GROUP BY step, status",
        )
        .bind(id.as_uuid())
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
        for row in &rows {
            *stats.steps.entry(get(row, "step")?).or_default().entry(get(row, "outcome")?).or_default() +=
                count::<u64>(row, "n")?;
        }
        Ok(stats)
    }

    async fn count_contact_events(
        &self,
        workspace: WorkspaceId,
        contact: ContactId,
        name: &str,
        since: Option<Timestamp>,
        until: EventId,
    ) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE contact_id = $1 AND id <= $2 AND name = $3 AND received_at >= $4 \
             AND workspace_id = $5",
        )
        .bind(contact.as_uuid())
        .bind(until.as_uuid())
        .bind(encode::text(name))
        .bind(encode::ts(since.unwrap_or(Timestamp::MIN)))
        .bind(workspace.as_uuid())
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        u64::try_from(n).map_err(|e| corrupt("count", e))
    }

    async fn contact_event_after(
        &self,
        workspace: WorkspaceId,
        contact: ContactId,
        names: &[String],
        after: EventId,
    ) -> StoreResult<bool> {
        let names: Vec<String> = names.iter().map(|n| encode::text(n).into_owned()).collect();
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM events WHERE contact_id = $1 AND id > $2 AND workspace_id = $4 \
             AND (name = ANY($3) OR (cardinality($3::text[]) = 0 AND NOT (source_id IS NULL AND name = ANY($5)))) \
             LIMIT 1",
        )
        .bind(contact.as_uuid())
        .bind(after.as_uuid())
        .bind(names)
        .bind(workspace.as_uuid())
        .bind(&herald_domain::activity::NOT_CONTACT_ACTIVITY[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(found.is_some())
    }

    async fn archived_journeys(
        &self,
        workspace: WorkspaceId,
        campaign: CampaignId,
        after: Option<JourneyId>,
        limit: u32,
    ) -> StoreResult<Vec<(JourneyId, ContactId)>> {
        let rows = sqlx::query(
            "SELECT id, contact_id FROM journeys WHERE workspace_id = $1 AND campaign_id = $2 \
             AND status = 'exited' AND exit_reason = $3 AND id > $4 ORDER BY id LIMIT $5",
        )
        .bind(workspace.as_uuid())
        .bind(campaign.as_uuid())
        .bind(ARCHIVED)
        .bind(after.map_or(Uuid::nil(), |a| a.as_uuid()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| Ok((JourneyId::from_uuid(uuid(row, "id")?), ContactId::from_uuid(uuid(row, "contact_id")?))))
            .collect()
    }

    async fn contact_journeys(
        &self,
        workspace: WorkspaceId,
        contact: ContactId,
        campaign: Option<CampaignId>,
        limit: u32,
    ) -> StoreResult<Vec<Journey>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            journey_columns!(),
            " FROM journeys WHERE contact_id = $1 AND ($2::uuid IS NULL OR campaign_id = $2) AND workspace_id = $4 \
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(contact.as_uuid())
        .bind(campaign.map(|c| c.as_uuid()))
        .bind(i64::from(limit))
        .bind(workspace.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter().map(journey).collect()
    }

    async fn journey_contexts(&self, workspace: WorkspaceId, ids: &[JourneyId]) -> StoreResult<Vec<JourneyContext>> {
        let ids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        let rows = sqlx::query(concat!(journey_context_select!(), "WHERE j.workspace_id = $1 AND j.id = ANY($2)"))
            .bind(workspace.as_uuid())
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                let event = match opt_uuid(row, "e_id")? {
                    Some(_) => Some(event_at(row, "e_")?),
                    None => None,
                };
                Ok(JourneyContext {
                    journey: journey(row)?,
                    campaign_name: get(row, "campaign_name")?,
                    campaign_state: parse(row, "campaign_state")?,
                    contact: contact_at(row, "ct_")?,
                    workspace_timezone: get(row, "workspace_timezone")?,
                    suppressed: get(row, "suppressed")?,
                    workspace_smtp: get(row, "workspace_smtp")?,
                    event,
                })
            })
            .collect()
    }

    async fn commit_campaign_batch(
        &self,
        items: &[WorkCommit<'_>],
        now: Timestamp,
    ) -> StoreResult<Vec<StoreResult<()>>> {
        work::commit_batch(self, items, now).await
    }

    async fn list_messages(
        &self,
        workspace: WorkspaceId,
        filter: &MessageFilter,
        page: PageRequest<MessageId>,
    ) -> StoreResult<Page<Message>> {
        messages::list(&self.pool, workspace, filter, page).await
    }

    async fn journey_emails(&self, workspace: WorkspaceId, journey: JourneyId) -> StoreResult<Vec<EmailSummary>> {
        crate::activity::journey_emails(&self.pool, workspace, journey).await
    }

    async fn get_message(&self, workspace: WorkspaceId, id: MessageId) -> StoreResult<Message> {
        messages::by_id(&self.pool, workspace, id).await
    }

    async fn get_messages(&self, workspace: WorkspaceId, ids: &[MessageId]) -> StoreResult<Vec<Message>> {
        messages::by_ids(&self.pool, workspace, ids).await
    }
}
