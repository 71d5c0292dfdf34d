//! Contacts: the identity fields parsed at the edge (`EmailAddress`, `UserId`, `Phone`) and the
//! rule that decides which contact an inbound event belongs to; how attributes merge and what
//! they may hold is `attributes.rs`.

mod attributes;

pub use attributes::{
    AttributeError, AttributeLimit, MAX_ATTRIBUTE_NAME_BYTES, MAX_ATTRIBUTE_VALUE_BYTES, MAX_ATTRIBUTES,
    check_attribute_merge, merge_attributes, set_attributes_once,
};

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ContactId, Timestamp, WorkspaceId};

/// A contact as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contact {
    pub id: ContactId,
    pub workspace_id: WorkspaceId,
    pub email: Option<EmailAddress>,
    pub user_id: Option<UserId>,
    pub phone: Option<Phone>,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub attributes: Map<String, Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Why an identity field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("must not be empty")]
    Empty,
    #[error("is too long (at most {0} characters)")]
    TooLong(usize),
    #[error("must contain exactly one `@` with text on both sides")]
    NoAt,
    #[error("must not contain spaces, quotes, angle brackets or control characters")]
    BadChar,
    #[error("has an invalid domain after the `@`")]
    BadDomain,
    #[error("must have 5 to 20 digits, optionally starting with `+`")]
    BadPhone,
}

/// An email address, trimmed and lower-cased, so `User@Example.com` and `user@example.com`
/// are one contact. Internationalised addresses (Unicode local parts, IDN domains) are kept
/// as written (lower-cased); the domain must be valid under IDNA.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// A value read back from the store, which was parsed on the way in: not checked again
    /// (the ingest hot path reads many contacts per batch).
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn parse(raw: &str) -> Result<Self, IdentityError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(IdentityError::Empty);
        }
        if s.chars().count() > 254 {
            return Err(IdentityError::TooLong(254));
        }
        if s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '"' | '<' | '>' | '(' | ')' | ',' | ';' | '\\' | '[' | ']')
        }) {
            return Err(IdentityError::BadChar);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(IdentityError::NoAt)?;
        if local.is_empty() || domain.is_empty() || local.contains('@') {
            return Err(IdentityError::NoAt);
        }
        if local.chars().count() > 64 {
            return Err(IdentityError::TooLong(64));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(IdentityError::BadChar);
        }
        let ascii = idna::domain_to_ascii(domain).map_err(|_| IdentityError::BadDomain)?;
        let labels_ok = ascii.split('.').count() >= 2
            && ascii.split('.').all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'));
        if !labels_ok {
            return Err(IdentityError::BadDomain);
        }
        Ok(Self(s.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The sender's own id for a person (`usr_8a3f2d`, PostHog's `distinct_id`): 1–255
/// characters, case-sensitive, kept exactly (numbers are accepted and kept as their digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// A value read back from the store, which was parsed on the way in: not checked again
    /// (the ingest hot path reads many contacts per batch).
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn parse(raw: &str) -> Result<Self, IdentityError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(IdentityError::Empty);
        }
        if s.chars().count() > 255 {
            return Err(IdentityError::TooLong(255));
        }
        if s.chars().any(char::is_control) {
            return Err(IdentityError::BadChar);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number reduced to `+` and digits (`+1 (555) 010-9999` → `+15550109999`), so one
/// number written two ways matches one contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    /// A value read back from the store, which was parsed on the way in: not checked again
    /// (the ingest hot path reads many contacts per batch).
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn parse(raw: &str) -> Result<Self, IdentityError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(IdentityError::Empty);
        }
        let (plus, rest) = match s.strip_prefix('+') {
            Some(rest) => ("+", rest),
            None => ("", s),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(IdentityError::BadPhone),
            }
        }
        if !(5..=20).contains(&digits.len()) {
            return Err(IdentityError::BadPhone);
        }
        Ok(Self(format!("{plus}{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The identity an inbound event carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub email: Option<EmailAddress>,
    pub user_id: Option<UserId>,
    pub phone: Option<Phone>,
}

/// A stored contact's identity, as seen when resolving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownContact {
    pub id: ContactId,
    pub email: Option<EmailAddress>,
    pub user_id: Option<UserId>,
    pub phone: Option<Phone>,
}

/// Which contact an event belongs to and what to record on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The event belongs to this existing contact; `claim` lists identifiers to add to it.
    Existing { id: ContactId, claim: Identity, conflicts: Vec<IdentityConflict> },
    /// No contact matched and an email was given: create one with this identity.
    Create { identity: Identity, conflicts: Vec<IdentityConflict> },
    /// No contact matched and there is no email to create one with.
    Unmatched,
}

/// An identifier the event carried that was not applied, recorded on the event so the
/// sender can see why; no contact is changed by a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IdentityConflict {
    /// The value belongs to another contact, which was left untouched.
    HeldByOther { field: String, value: String, contact: ContactId },
    /// The chosen contact already has a different value for the field; it was kept.
    Differs { field: String, value: String, kept: String },
}

/// Decides which contact an event belongs to: the documented rule.
///
/// 1. Match order: email, then user id, then phone; the first match is the contact.
/// 2. An identifier the event carries that no contact holds is added to that contact when
///    its field is empty (a user id seen for the first time attaches to the contact matched
///    by email). If the field already holds another value, it is kept, and the event records
///    a `Differs` conflict.
/// 3. An identifier held by a *different* contact is never moved and the two contacts are
///    never merged: the event goes to the first match, and records a `HeldByOther` conflict.
/// 4. When the match came from user id or phone and the event carries an email no contact
///    holds, the contact's email is updated (the person changed address).
/// 5. Nothing matched: with an email, create a contact with every identifier given;
///    without one, the event is unmatched.
pub fn resolve_identity(
    incoming: &Identity,
    by_email: Option<&KnownContact>,
    by_user_id: Option<&KnownContact>,
    by_phone: Option<&KnownContact>,
) -> Resolution {
    let Some(target) = by_email.or(by_user_id).or(by_phone) else {
        return match incoming.email {
            Some(_) => Resolution::Create { identity: incoming.clone(), conflicts: Vec::new() },
            None => Resolution::Unmatched,
        };
    };
    let mut claim = Identity::default();
    let mut conflicts = Vec::new();
    if by_email.is_none() {
        // Rule 4 (by_email is the target whenever it is present).
        claim.email = incoming.email.clone();
    }
    claim.user_id =
        claim_field("user_id", incoming.user_id.as_ref(), by_user_id, target.user_id.as_ref(), target, &mut conflicts);
    claim.phone =
        claim_field("phone", incoming.phone.as_ref(), by_phone, target.phone.as_ref(), target, &mut conflicts);
    Resolution::Existing { id: target.id, claim, conflicts }
}

/// Rules 2 and 3 for one identifier: returns the value to add to `target`, if any.
fn claim_field<T: Clone + PartialEq + AsRef<str>>(
    field: &'static str,
    incoming: Option<&T>,
    holder: Option<&KnownContact>,
    current: Option<&T>,
    target: &KnownContact,
    conflicts: &mut Vec<IdentityConflict>,
) -> Option<T> {
    let value = incoming?;
    match (holder, current) {
        (Some(other), _) if other.id != target.id => {
            conflicts.push(IdentityConflict::HeldByOther {
                field: field.to_owned(),
                value: value.as_ref().to_owned(),
                contact: other.id,
            });
            None
        }
        (Some(_), _) => None,
        (None, None) => Some(value.clone()),
        (None, Some(kept)) if kept == value => None,
        (None, Some(kept)) => {
            conflicts.push(IdentityConflict::Differs {
                field: field.to_owned(),
                value: value.as_ref().to_owned(),
                kept: kept.as_ref().to_owned(),
            });
            None
        }
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Phone {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn email(s: &str) -> EmailAddress {
        EmailAddress::parse(s).expect("valid email")
    }

    fn contact(n: u128, e: Option<&str>, u: Option<&str>, p: Option<&str>) -> KnownContact {
        KnownContact {
            id: ContactId::from_uuid(Uuid::from_u128(n)),
            email: e.map(email),
            user_id: u.map(|u| UserId::parse(u).expect("user id")),
            phone: p.map(|p| Phone::parse(p).expect("phone")),
        }
    }

    fn identity(e: Option<&str>, u: Option<&str>, p: Option<&str>) -> Identity {
        let c = contact(0, e, u, p);
        Identity { email: c.email, user_id: c.user_id, phone: c.phone }
    }

    #[test]
    fn emails_are_trimmed_lowercased_and_checked() {
        assert_eq!(email("  User@Example.COM ").as_str(), "user@example.com");
        assert_eq!(email("用户@例子.广告").as_str(), "用户@例子.广告");
        assert_eq!(email("josé@bücher.de").as_str(), "josé@bücher.de");
        let bad = [
            ("", IdentityError::Empty),
            ("   ", IdentityError::Empty),
            ("no-at.example.com", IdentityError::NoAt),
            ("@example.com", IdentityError::NoAt),
            ("user@", IdentityError::NoAt),
            ("a b@example.com", IdentityError::BadChar),
            ("\"quoted\"@example.com", IdentityError::BadChar),
            ("user@localhost", IdentityError::BadDomain),
            ("user@-bad-.com", IdentityError::BadDomain),
            ("user@exa..mple.com", IdentityError::BadDomain),
            (".user@example.com", IdentityError::BadChar),
        ];
        for (input, err) in bad {
            assert_eq!(EmailAddress::parse(input), Err(err), "{input:?}");
        }
        assert_eq!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(65))), Err(IdentityError::TooLong(64)));
    }

    #[test]
    fn phones_reduce_to_digits() {
        assert_eq!(Phone::parse("+1 (555) 010-9999").expect("ok").as_str(), "+15550109999");
        assert_eq!(Phone::parse("555.010.9999").expect("ok").as_str(), "5550109999");
        for bad in ["", "12", "+1-555-CALL-NOW", "1".repeat(21).as_str()] {
            assert!(Phone::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn identity_resolution_rule() {
        let x = contact(1, Some("x@example.com"), None, None);
        let y = contact(2, Some("y@example.com"), Some("u-y"), None);
        let z = contact(3, None, Some("u-z"), Some("+15550100"));

        // Nothing matches: create with an email, unmatched without.
        let new = identity(Some("n@example.com"), Some("u-n"), None);
        assert_eq!(
            resolve_identity(&new, None, None, None),
            Resolution::Create { identity: new.clone(), conflicts: vec![] }
        );
        assert_eq!(resolve_identity(&identity(None, Some("u-n"), None), None, None, None), Resolution::Unmatched);

        // Email matches X, and a user id nobody holds attaches to X.
        let event = identity(Some("x@example.com"), Some("u-new"), None);
        assert_eq!(
            resolve_identity(&event, Some(&x), None, None),
            Resolution::Existing { id: x.id, claim: identity(None, Some("u-new"), None), conflicts: vec![] }
        );

        // Email matches X, user id matches Y: X wins, Y untouched, the conflict recorded.
        let event = identity(Some("x@example.com"), Some("u-y"), None);
        assert_eq!(
            resolve_identity(&event, Some(&x), Some(&y), None),
            Resolution::Existing {
                id: x.id,
                claim: Identity::default(),
                conflicts: vec![IdentityConflict::HeldByOther {
                    field: "user_id".into(),
                    value: "u-y".into(),
                    contact: y.id
                }],
            }
        );

        // Email matches Y, which has another user id: Y keeps its own.
        let event = identity(Some("y@example.com"), Some("u-other"), None);
        assert_eq!(
            resolve_identity(&event, Some(&y), None, None),
            Resolution::Existing {
                id: y.id,
                claim: Identity::default(),
                conflicts: vec![IdentityConflict::Differs {
                    field: "user_id".into(),
                    value: "u-other".into(),
                    kept: "u-y".into()
                }],
            }
        );

        // Matched by user id with a new email: the person changed address.
        let event = identity(Some("y-new@example.com"), Some("u-y"), None);
        assert_eq!(
            resolve_identity(&event, None, Some(&y), None),
            Resolution::Existing {
                id: y.id,
                claim: identity(Some("y-new@example.com"), None, None),
                conflicts: vec![]
            }
        );

        // Matched by phone alone.
        let event = identity(None, None, Some("+1 555 0100"));
        assert_eq!(
            resolve_identity(&event, None, None, Some(&z)),
            Resolution::Existing { id: z.id, claim: Identity::default(), conflicts: vec![] }
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = EmailAddress::parse(&s);
            let _ = Phone::parse(&s);
            let _ = UserId::parse(&s);
        }

        #[test]
        fn parsed_emails_are_stable(local in "[a-zA-Z0-9._%+-]{1,20}", domain in "[a-zA-Z0-9-]{1,20}") {
            if let Ok(parsed) = EmailAddress::parse(&format!("{local}@{domain}.com")) {
                prop_assert_eq!(EmailAddress::parse(parsed.as_str()), Ok(parsed.clone()));
            }
        }
    }
}
