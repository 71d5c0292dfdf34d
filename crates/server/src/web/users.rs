//! People who log in to the web UI with an email and a password: hashing and checking
//! passwords (argon2id with RustCrypto's defaults, stored as PHC strings), shared by
//! `herald user …` and the login page.
//!
//! Hashing and verifying take tens of milliseconds of CPU on purpose, so they run on the
//! blocking pool, never on an async worker thread. A login for an email that has no user
//! still verifies the password against a fixed dummy hash, so the time taken does not tell
//! whether an address has an account.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use herald_domain::{EmailAddress, Password, PasswordHash, UserAccount, WorkspaceName};
use herald_store::{SharedStore, StoreResult};

/// Hashes with a fresh random salt. Blocking: call through [`hash`] from async code.
fn hash_blocking(password: &Password, salt: [u8; 16]) -> PasswordHash {
    let hashed = Argon2::default()
        .hash_password_with_salt(password.expose().as_bytes(), &salt)
        .expect("argon2's default parameters accept a 16-byte salt and any password");
    PasswordHash::from_phc(hashed.to_string())
}

/// Whether `password` matches `hash`. A hash that cannot be parsed matches nothing.
fn verify_blocking(password: &Password, hash: &PasswordHash) -> bool {
    Argon2::default().verify_password(password.expose().as_bytes(), hash.as_str()).is_ok()
}

/// The hash a login for an unknown email is checked against: made with the same parameters
/// as real hashes, so the check costs the same. Its outcome is thrown away.
static DUMMY: LazyLock<PasswordHash> =
    LazyLock::new(|| hash_blocking(&Password::presented("herald: no such user"), [0; 16]));

/// An argon2id hash of a new password, with a random salt.
pub async fn hash(password: Password) -> PasswordHash {
    let salt: [u8; 16] = rand::random();
    tokio::task::spawn_blocking(move || hash_blocking(&password, salt)).await.expect("the hashing task does not panic")
}

async fn verify(password: Password, hash: Option<PasswordHash>) -> bool {
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify_blocking(&password, &hash),
        None => {
            verify_blocking(&password, &DUMMY);
            false
        }
    })
    .await
    .expect("the verifying task does not panic")
}

/// The user of that workspace with that email, if the password is theirs. Every way of
/// failing (unknown workspace, malformed or unknown email, wrong password) answers `None`
/// after the same amount of work.
pub async fn authenticate(
    store: &SharedStore,
    workspace: &str,
    email: &str,
    password: Password,
) -> StoreResult<Option<UserAccount>> {
    let workspace = match WorkspaceName::parse(workspace.trim()) {
        Ok(name) => store.workspace_by_name(&name).await?,
        Err(_) => None,
    };
    let user = match (workspace, EmailAddress::parse(email)) {
        (Some(workspace), Ok(email)) => store.user_by_email(workspace.id, &email).await?,
        _ => None,
    };
    let matches = verify(password, user.as_ref().map(|u| u.password_hash.clone())).await;
    Ok(user.filter(|_| matches))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id_phc_strings_that_verify() {
        let password = Password::parse_new("correct horse battery").expect("valid");
        let one = hash_blocking(&password, [1; 16]);
        let two = hash_blocking(&password, [2; 16]);
        assert!(one.as_str().starts_with("$argon2id$v=19$"), "PHC string");
        assert_ne!(one, two, "a different salt gives a different hash");
        assert!(verify_blocking(&password, &one) && verify_blocking(&password, &two));
        assert!(!verify_blocking(&Password::presented("correct horse battery!"), &one));
        assert!(!verify_blocking(&password, &PasswordHash::from_phc("not a hash".to_owned())));
    }

    #[test]
    fn the_dummy_hash_costs_like_a_real_one() {
        let real = hash_blocking(&Password::presented("whatever it is"), [3; 16]);
        let params = |h: &PasswordHash| h.as_str().split('$').nth(3).map(str::to_owned);
        assert_eq!(params(&DUMMY), params(&real));
    }
}
