//! Campaigns, journeys, the step log and messages on SQLite: campaigns and their versions
//! and the journey queries here, the work commit in [`work`], messages in [`messages`].

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
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::direct::direct_error;
use crate::jobs::insert_jobs;
use crate::rows::{contact_at, corrupt, document, event_at, get, json_object, opt_ts, ts, uuid};
use crate::{CHUNK, SqliteStore, Tx, db_error};

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

fn parse<T: std::str::FromStr<Err = String>>(row: &SqliteRow, column: &str) -> StoreResult<T> {
    get::<String>(row, column)?.parse().map_err(|e: String| corrupt(column, e))
}

fn number(row: &SqliteRow, column: &str) -> StoreResult<u32> {
    u32::try_from(get::<i64>(row, column)?).map_err(|e| corrupt(column, e))
}

fn campaign(row: &SqliteRow, keys: &SecretKeys) -> StoreResult<Campaign> {
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

fn journey(row: &SqliteRow) -> StoreResult<Journey> {
    Ok(Journey {
        id: JourneyId::from_uuid(uuid(row, "id")?),
        workspace_id: WorkspaceId::from_uuid(uuid(row, "workspace_id")?),
        campaign_id: CampaignId::from_uuid(uuid(row, "campaign_id")?),
        version: number(row, "version")?,
        contact_id: ContactId::from_uuid(uuid(row, "contact_id")?),
        event_id: get::<Option<Uuid>>(row, "event_id")?.map(EventId::from_uuid),
        status: parse(row, "status")?,
        step: get::<Option<i64>>(row, "step")?.map(|s| u32::try_from(s).map_err(|e| corrupt("step", e))).transpose()?,
        run_at: opt_ts(row, "run_at")?,
        held: get::<i64>(row, "held")? != 0,
        custom_variables: json_object(row, "custom_variables")?,
        entered_at: ts(row, "entered_at")?,
        ended_at: opt_ts(row, "ended_at")?,
        exit_reason: get(row, "exit_reason")?,
        converted_at: opt_ts(row, "converted_at")?,
        goal_until: opt_ts(row, "goal_until")?,
        conversion_step: get(row, "conversion_step")?,
    })
}

async fn load_campaign(
    conn: &mut sqlx::SqliteConnection,
    keys: &SecretKeys,
    workspace: WorkspaceId,
    id: CampaignId,
) -> StoreResult<Campaign> {
    let row = sqlx::query(concat!(campaign_select!(), "WHERE c.workspace_id = ? AND c.id = ?"))
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(conn)
        .await
        .map_err(db_error)?
        .ok_or(CAMPAIGN_NOT_FOUND)?;
    campaign(&row, keys)
}

async fn insert_version(
    tx: &mut Tx,
    id: CampaignId,
    version: u32,
    document: &Value,
    now: Timestamp,
) -> StoreResult<()> {
    let sealed = tx.secrets.seal_document(Document::Campaign, columns::CAMPAIGN_DOCUMENT, document);
    sqlx::query(
        "INSERT INTO campaign_versions (campaign_id, version, document, sealed_with, created_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(id.as_uuid())
    .bind(i64::from(version))
    .bind(sealed.value.to_string())
    .bind(sealed.key)
        .bind(now.unix_millis())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Gives held journeys of `campaign` their step jobs back (on resume).
async fn release_held(tx: &mut Tx, workspace: WorkspaceId, campaign: CampaignId, now: Timestamp) -> StoreResult<()> {
    let held = sqlx::query("SELECT id, step, run_at FROM journeys WHERE campaign_id = ? AND held = 1")
        .bind(campaign.as_uuid())
        .fetch_all(&mut **tx)
        .await
        .map_err(db_error)?;
    let mut jobs = Vec::with_capacity(held.len());
    for row in &held {
        let id = JourneyId::from_uuid(uuid(row, "id")?);
        let step = get::<Option<i64>>(row, "step")?;
        let run_at = opt_ts(row, "run_at")?;
        jobs.push(NewJob::new(JobKind::JourneyStep, json!({"journey": id, "step": step, "run_at": run_at}), now));
    }
    insert_jobs(tx, workspace, &jobs, now).await?;
    sqlx::query("UPDATE journeys SET held = 0, updated_at = ? WHERE campaign_id = ? AND held = 1")
        .bind(now.unix_millis())
        .bind(campaign.as_uuid())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// `AND name IN (...)`, or when `names` is empty any event but those Herald records about the
/// contact's messages.
fn push_names(query: &mut QueryBuilder<Sqlite>, names: &[String]) {
    if names.is_empty() {
        query.push(" AND NOT (source_id IS NULL AND name IN (");
        let mut list = query.separated(", ");
        for name in herald_domain::activity::NOT_CONTACT_ACTIVITY {
            list.push_bind(name);
        }
        query.push("))");
    } else {
        query.push(" AND name IN (");
        let mut list = query.separated(", ");
        for name in names {
            list.push_bind(name.clone());
        }
        query.push(")");
    }
}

/// In an ingest transaction: the jobs that will decide segment memberships and evaluate
/// campaign triggers for `events` (in workspaces with campaigns or segments). Returns
/// when the earliest is due, if any was enqueued (for the caller to announce after commit).
pub(crate) fn enqueue_evaluation(
    db: &rusqlite::Connection,
    events: &[herald_domain::Event],
    now: Timestamp,
) -> StoreResult<Option<Timestamp>> {
    let mut workspaces: Vec<WorkspaceId> = events.iter().map(|e| e.workspace_id).collect();
    workspaces.sort();
    workspaces.dedup();
    let mut live = std::collections::HashSet::new();
    let mut probe = db
        .prepare_cached(
            "SELECT 1 FROM campaigns WHERE workspace_id = ?1 AND state IN ('active', 'paused') \
             UNION ALL SELECT 1 FROM segments WHERE workspace_id = ?1 LIMIT 1",
        )
        .map_err(direct_error)?;
    for workspace in workspaces {
        if probe.exists([&workspace.as_uuid().as_bytes()[..]]).map_err(direct_error)? {
            live.insert(workspace);
        }
    }
    let mut due = None;
    for (workspace, job) in herald_store::campaign::evaluation_jobs(events, |w| live.contains(&w), now) {
        crate::jobs::insert_job_direct(db, workspace, &job, now)?;
        due = Some(due.map_or(job.run_at, |due: Timestamp| due.min(job.run_at)));
    }
    Ok(due)
}

#[async_trait]
impl CampaignStore for SqliteStore {
    async fn create_campaign(
        &self,
        workspace: WorkspaceId,
        name: &str,
        document: &Value,
        now: Timestamp,
    ) -> StoreResult<Campaign> {
        let id = CampaignId::from_uuid(new_uuid(now));
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO campaigns (id, workspace_id, name, state, version, created_at, updated_at) \
             VALUES (?, ?, ?, 'draft', 1, ?, ?)",
        )
        .bind(id.as_uuid())
        .bind(workspace.as_uuid())
        .bind(name)
        .bind(now.unix_millis())
        .bind(now.unix_millis())
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
            sqlx::query(concat!(campaign_select!(), "WHERE c.workspace_id = ? AND c.id > ? ORDER BY c.id LIMIT ?"))
                .bind(workspace.as_uuid())
                .bind(page.after.map_or(Uuid::nil(), |id| id.as_uuid()))
                .bind(i64::from(page.limit) + 1)
                .fetch_all(&self.readers)
                .await
                .map_err(db_error)?;
        let campaigns = rows.iter().map(|row| campaign(row, &self.secrets)).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(campaigns, page.limit, |c| c.id))
    }

    async fn get_campaign(&self, workspace: WorkspaceId, id: CampaignId) -> StoreResult<Campaign> {
        let mut conn = self.readers.acquire().await.map_err(db_error)?;
        load_campaign(&mut conn, &self.secrets, workspace, id).await
    }

    async fn campaign_version(&self, workspace: WorkspaceId, id: CampaignId, version: u32) -> StoreResult<Value> {
        let document: String = sqlx::query_scalar(
            "SELECT v.document FROM campaign_versions v JOIN campaigns c ON c.id = v.campaign_id \
             WHERE c.workspace_id = ? AND v.campaign_id = ? AND v.version = ?",
        )
        .bind(workspace.as_uuid())
        .bind(id.as_uuid())
        .bind(i64::from(version))
        .fetch_optional(&self.readers)
        .await
        .map_err(db_error)?
        .ok_or(StoreError::NotFound { entity: "campaign version" })?;
        let mut document = serde_json::from_str(&document).map_err(|e| corrupt(columns::CAMPAIGN_DOCUMENT, e))?;
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
        let mut tx = self.write().await?;
        let current = load_campaign(&mut tx, &self.secrets, workspace, id).await?;
        if current.state == CampaignState::Archived {
            return Err(StoreError::Conflict { constraint: "campaign_archived".into() });
        }
        let version = current.version + 1;
        insert_version(&mut tx, id, version, document, now).await?;
        sqlx::query("UPDATE campaigns SET name = ?, version = ?, updated_at = ? WHERE id = ?")
            .bind(name)
            .bind(i64::from(version))
            .bind(now.unix_millis())
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
        let mut tx = self.write().await?;
        let current = load_campaign(&mut tx, &self.secrets, workspace, id).await?;
        if !from.contains(&current.state) {
            return Err(StoreError::Conflict { constraint: "campaign_state".into() });
        }
        sqlx::query("UPDATE campaigns SET state = ?, updated_at = ? WHERE id = ?")
            .bind(to.as_str())
            .bind(now.unix_millis())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        match to {
            CampaignState::Active => release_held(&mut tx, workspace, id, now).await?,
            CampaignState::Archived => {
                let exited = sqlx::query(
                    "UPDATE journeys SET status = 'exited', exit_reason = ?, ended_at = ?, \
                     step = NULL, run_at = NULL, held = 0, updated_at = ? WHERE campaign_id = ? AND status = 'active'",
                )
                .bind(ARCHIVED)
                .bind(now.unix_millis())
                .bind(now.unix_millis())
                .bind(id.as_uuid())
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
        let mut tx = self.write().await?;
        let deleted = sqlx::query("DELETE FROM campaigns WHERE workspace_id = ? AND id = ?")
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        if deleted.rows_affected() == 0 {
            return Err(CAMPAIGN_NOT_FOUND);
        }
        tx.commit().await.map_err(db_error)
    }

    async fn live_campaigns(&self, workspace: WorkspaceId) -> StoreResult<Vec<Campaign>> {
        let rows = sqlx::query(concat!(
            campaign_select!(),
            "WHERE c.workspace_id = ? AND c.state IN ('active', 'paused') ORDER BY c.id"
        ))
        .bind(workspace.as_uuid())
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        rows.iter().map(|row| campaign(row, &self.secrets)).collect()
    }

    async fn campaign_stats(&self, workspace: WorkspaceId, id: CampaignId) -> StoreResult<CampaignStats> {
        let mut conn = self.readers.acquire().await.map_err(db_error)?;
        load_campaign(&mut conn, &self.secrets, workspace, id).await?;
        let mut stats = CampaignStats::default();
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n, COUNT(converted_at) AS converted FROM journeys WHERE campaign_id = ? GROUP BY status",
        )
        .bind(id.as_uuid())
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
        for row in &rows {
            let n = u64::try_from(get::<i64>(row, "n")?).map_err(|e| corrupt("n", e))?;
            stats.entered += n;
            stats.converted += u64::try_from(get::<i64>(row, "converted")?).map_err(|e| corrupt("converted", e))?;
            match parse::<JourneyStatus>(row, "status")? {
                JourneyStatus::Active => stats.active = n,
                JourneyStatus::Completed => stats.completed = n,
                JourneyStatus::Exited => stats.exited = n,
            }
        }
        let rows = sqlx::query(
            // An email step handed to SMTP is counted by what became of its message.
            "SELECT step, outcome, COUNT(*) AS n FROM journey_steps WHERE campaign_id = ? AND outcome <> 'queued' \
             GROUP BY step, outcome \
             UNION ALL SELECT step, status AS outcome, COUNT(*) AS n FROM messages \
             WHERE campaign_id = ? AND transport = 'smtp' GROUP BY step, status",
        )
        .bind(id.as_uuid())
        .bind(id.as_uuid())
        .fetch_all(&mut *conn)
        .await
        .map_err(db_error)?;
        for row in &rows {
            let n = u64::try_from(get::<i64>(row, "n")?).map_err(|e| corrupt("n", e))?;
            *stats.steps.entry(get(row, "step")?).or_default().entry(get(row, "outcome")?).or_default() += n;
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
            // `+workspace_id`: the workspace only scopes the count; the contact's index must
            // serve it, not the workspace's (SQLite would otherwise prefer `events_received`).
            "SELECT COUNT(*) FROM events WHERE +workspace_id = ? AND contact_id = ? AND id <= ? AND name = ? \
             AND received_at >= ?",
        )
        .bind(workspace.as_uuid())
        .bind(contact.as_uuid())
        .bind(until.as_uuid())
        .bind(name)
        .bind(since.unwrap_or(Timestamp::MIN).unix_millis())
        .fetch_one(&self.readers)
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
        // `+workspace_id`, as in `count_contact_events`: the contact's index serves the search.
        let mut query = QueryBuilder::<Sqlite>::new("SELECT 1 FROM events WHERE +workspace_id = ");
        query
            .push_bind(workspace.as_uuid())
            .push(" AND contact_id = ")
            .push_bind(contact.as_uuid())
            .push(" AND id > ")
            .push_bind(after.as_uuid());
        push_names(&mut query, names);
        query.push(" LIMIT 1");
        let found: Option<i64> = query.build_query_scalar().fetch_optional(&self.readers).await.map_err(db_error)?;
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
            "SELECT id, contact_id FROM journeys WHERE workspace_id = ? AND campaign_id = ? \
             AND status = 'exited' AND exit_reason = ? AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(workspace.as_uuid())
        .bind(campaign.as_uuid())
        .bind(ARCHIVED)
        .bind(after.map_or(Uuid::nil(), |a| a.as_uuid()))
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
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
            " FROM journeys WHERE workspace_id = ?1 AND contact_id = ?2 AND (?3 IS NULL OR campaign_id = ?3) \
             ORDER BY id DESC LIMIT ?4"
        ))
        .bind(workspace.as_uuid())
        .bind(contact.as_uuid())
        .bind(campaign.map(|c| c.as_uuid()))
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await
        .map_err(db_error)?;
        rows.iter().map(journey).collect()
    }

    async fn journey_contexts(&self, workspace: WorkspaceId, ids: &[JourneyId]) -> StoreResult<Vec<JourneyContext>> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let mut query = QueryBuilder::<Sqlite>::new(concat!(journey_context_select!(), "WHERE j.workspace_id = "));
            query.push_bind(workspace.as_uuid()).push(" AND j.id IN (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id.as_uuid());
            }
            query.push(")");
            for row in query.build().fetch_all(&self.readers).await.map_err(db_error)? {
                let outcome: Option<String> = get(&row, "e_outcome")?;
                found.push(JourneyContext {
                    journey: journey(&row)?,
                    campaign_name: get(&row, "campaign_name")?,
                    campaign_state: parse(&row, "campaign_state")?,
                    contact: contact_at(&row, "ct_")?,
                    workspace_timezone: get(&row, "workspace_timezone")?,
                    suppressed: get(&row, "suppressed")?,
                    workspace_smtp: get(&row, "workspace_smtp")?,
                    event: outcome.map(|outcome| event_at(&row, "e_", &outcome)).transpose()?,
                });
            }
        }
        Ok(found)
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
        messages::list(&self.readers, workspace, filter, page).await
    }

    async fn get_message(&self, workspace: WorkspaceId, id: MessageId) -> StoreResult<Message> {
        messages::by_id(&self.readers, workspace, id).await
    }

    async fn get_messages(&self, workspace: WorkspaceId, ids: &[MessageId]) -> StoreResult<Vec<Message>> {
        messages::by_ids(&self.readers, workspace, ids).await
    }

    async fn journey_emails(&self, workspace: WorkspaceId, journey: JourneyId) -> StoreResult<Vec<EmailSummary>> {
        crate::activity::journey_emails(&self.readers, workspace, journey).await
    }
}
