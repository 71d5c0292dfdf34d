//! Conformance cases for open and click tracking: what a message says about it survives the
//! round trip through the store, and a copy for a resend keeps it.

use herald_domain::{MessageStatus, Tracking};

use super::helpers::{at, journey_for, queued_message};
use crate::SharedStore;

pub async fn messages_keep_their_tracking(store: SharedStore) {
    use crate::campaign::CampaignWork;
    let (ws, contact, journey) = journey_for(&store, "tracked@example.com").await;
    let campaign = store.journey_context(ws, journey).await.expect("journey").journey.campaign_id;
    let cases = [
        Tracking { opens: true, clicks: true },
        Tracking { opens: true, clicks: false },
        Tracking { opens: false, clicks: true },
        Tracking::default(),
    ];
    let messages: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(n, tracking)| herald_domain::Message {
            id: herald_domain::MessageId::from_uuid(crate::new_uuid(at(10 + n as u64))),
            tracking: *tracking,
            ..queued_message(ws, contact, journey, campaign, "a@acme.test", MessageStatus::Queued)
        })
        .collect();
    let work = CampaignWork { messages: messages.clone(), ..CampaignWork::default() };
    store.commit_campaign_work(ws, None, &work, at(20)).await.expect("commit");
    for (message, tracking) in messages.iter().zip(cases) {
        assert_eq!(store.get_message(ws, message.id).await.expect("message").tracking, tracking);
    }
}
