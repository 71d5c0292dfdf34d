//! The conformance suite: every storage behaviour, written once, run against each backend.
//!
//! A backend's test file calls [`conformance_suite!`](crate::conformance_suite) with an async
//! function returning a fresh, migrated, empty store; the macro expands to one `#[tokio::test]`
//! per case below, so a failure names the behaviour and the backend.

mod broadcasts;
mod campaign_webhooks;
mod campaigns;
mod contacts;
mod email;
mod events;
mod helpers;
mod jobs;
mod secrets;
mod segments;
mod sources;
mod templates;
mod topics;
mod tracking;
mod webhooks;
mod workspaces;

pub use broadcasts::*;
pub use campaign_webhooks::*;
pub use campaigns::*;
pub use contacts::*;
pub use email::*;
pub use events::*;
pub use jobs::*;
pub use secrets::*;
pub use segments::*;
pub use sources::*;
pub use templates::*;
pub use topics::*;
pub use tracking::*;
pub use webhooks::*;
pub use workspaces::*;

/// Expands to one test per conformance case for the store built by `$make`.
#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!(@cases $make;
            migrate_is_idempotent,
            default_workspace_is_created_once,
            workspace_names_are_unique,
            api_keys_authenticate_until_revoked,
            api_keys_are_scoped_to_their_workspace,
            bootstrap_key_is_replaced_not_duplicated,
            api_keys_paginate_in_creation_order,
            users_are_unique_per_workspace_and_change_passwords,
            first_run_links_work_once_and_only_while_nobody_can_log_in,
            jobs_wait_for_their_run_at,
            claims_are_exclusive_until_the_lease_expires,
            finish_records_each_outcome,
            ping_effect_is_fenced_by_the_lease,
            follow_ups_commit_with_the_job_under_its_lease,
            concurrent_claims_never_overlap,
            claims_take_the_oldest_due_first,
            queue_stats_and_next_due,
            sources_are_managed_per_workspace,
            source_tokens_rotate_with_and_without_grace,
            rejections_and_samples_are_bounded,
            ingest_creates_then_updates_one_contact,
            ingest_replays_idempotency_keys_for_a_day,
            ingest_unmatched_is_refused_or_skipped,
            ingest_records_identity_conflicts,
            ingest_batches_race_safely,
            events_filter_and_paginate,
            events_filter_by_outcome,
            contacts_are_created_filtered_updated_and_deleted,
            numbers_round_trip_exactly,
            attribute_limits_hold_in_every_write,
            contact_import_upserts_by_email,
            attribute_search_examines_a_bounded_window,
            expired_idempotency_keys_are_purged,
            finished_jobs_are_purged_after_their_retention,
            campaigns_keep_versions_and_move_through_states,
            campaign_work_commits_whole_and_guarded,
            domains_release_held_messages_when_verified,
            deliveries_are_fenced_by_the_lease,
            bounces_are_recorded_with_their_suppression_and_soft_ones_counted,
            activities_are_recorded_once_and_become_contact_events,
            suppressions_transports_and_secrets,
            webhook_deliveries_are_idempotent_and_fenced,
            webhook_batches_apply_each_item_alone,
            journey_steps_record_the_calls_they_made,
            steps_that_failed_to_render_are_kept_and_never_resent,
            webhook_deliveries_filter_by_action_and_step,
            signing_keys_rotate_with_an_overlap,
            saved_actions_are_named_updated_and_soft_deleted,
            drafts_are_held_listed_and_settled_once,
            archiving_exits_journeys_and_queues_their_calls,
            endpoints_fail_recover_and_are_disabled_once,
            campaign_webhooks_are_scoped_and_keep_their_secrets,
            follow_ups_commit_with_suppressions_and_deliveries,
            contact_history_is_scoped_to_its_workspace,
            commits_that_make_jobs_due_wake_the_worker,
            sealed_secrets_read_back_and_need_no_second_sealing,
            messages_keep_their_tracking,
            hits_are_stored_with_their_job_and_recorded_once,
            topics_are_named_updated_and_soft_deleted,
            topic_choices_are_recorded_once_with_their_source_and_event,
            topic_subscribers_page_those_who_did_not_leave,
            templates_keep_every_version,
            transactional_sends_are_stored_once_per_key,
            segments_are_saved_referred_to_and_built,
            live_decisions_record_changes_once,
            broadcast_pages_write_each_recipient_once,
            broadcasts_pause_resume_and_cancel,
            batch_reads_keep_each_contacts_own,
            membership_events_are_evaluated_when_something_reacts,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                // The factory returns the store and a guard owning its resources (a temp dir);
                // the guard lives until the case ends.
                let (store, _guard): ($crate::SharedStore, _) = $make().await;
                $crate::conformance::$case(store.clone()).await;
                store.close().await;
            }
        )*
    };
}
