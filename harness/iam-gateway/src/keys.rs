//! Every secret the gateway has handed out or seen handed out, by access key id:
//! the account roots' keys of this run, temporary credentials from the
//! `AssumeRole` answers it forwarded, and the execution-role credentials it
//! issued to functions. A key the gateway does not know signs nothing.

use std::{collections::HashMap, sync::RwLock};

use sdk_config::RootKeys;
use time::OffsetDateTime;

/// Temporary keys are forgotten beyond this many, oldest expiry first.
const MAX_SESSIONS: usize = 50_000;

#[derive(Clone)]
struct Secret {
    secret: String,
    session_token: Option<String>,
    expires: Option<OffsetDateTime>,
}

/// Why a key cannot sign, in AWS's categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// No such key (`InvalidClientTokenId`).
    Unknown,
    /// A known key with a missing or different session token (`InvalidClientTokenId` too).
    WrongToken,
    /// A session key past its expiry (`ExpiredToken`).
    Expired,
}

/// The gateway's keys.
pub struct KeyStore {
    // A key id with several secrets is tolerated: the emulator draws session
    // key ids at random and could repeat one; the token tells them apart.
    keys: RwLock<HashMap<String, Vec<Secret>>>,
}

impl KeyStore {
    /// A store that knows the account roots' keys.
    pub fn new(roots: &RootKeys) -> Self {
        let keys = roots
            .iter()
            .map(|(account, secret)| {
                (
                    account.to_owned(),
                    vec![Secret {
                        secret: secret.to_owned(),
                        session_token: None,
                        expires: None,
                    }],
                )
            })
            .collect();
        Self {
            keys: RwLock::new(keys),
        }
    }

    /// Learns a long-term key, e.g. an IAM user's from `CreateAccessKey`.
    pub fn insert_long_term(&self, access_key_id: &str, secret: &str) {
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(
                access_key_id.to_owned(),
                vec![Secret {
                    secret: secret.to_owned(),
                    session_token: None,
                    expires: None,
                }],
            );
        }
    }

    /// Learns a temporary key.
    pub fn insert_session(
        &self,
        access_key_id: &str,
        secret: &str,
        session_token: &str,
        expires: OffsetDateTime,
    ) {
        let Ok(mut keys) = self.keys.write() else {
            return;
        };
        if keys.len() >= MAX_SESSIONS {
            let now = OffsetDateTime::now_utc();
            keys.retain(|_, secrets| {
                secrets.retain(|s| s.expires.is_none_or(|e| e > now));
                !secrets.is_empty()
            });
        }
        let secrets = keys.entry(access_key_id.to_owned()).or_default();
        secrets.retain(|s| s.session_token.as_deref() != Some(session_token));
        secrets.push(Secret {
            secret: secret.to_owned(),
            session_token: Some(session_token.to_owned()),
            expires: Some(expires),
        });
    }

    /// The secret that must have signed a request with this key and token, at `now`.
    pub fn secret(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<String, KeyError> {
        let keys = self.keys.read().map_err(|_| KeyError::Unknown)?;
        let secrets = keys.get(access_key_id).ok_or(KeyError::Unknown)?;
        // A root key takes no token; a session key needs its own.
        let found = secrets
            .iter()
            .find(|s| s.session_token.as_deref() == session_token)
            .ok_or(KeyError::WrongToken)?;
        if found.expires.is_some_and(|e| e <= now) {
            return Err(KeyError::Expired);
        }
        Ok(found.secret.clone())
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    #[test]
    fn roots_sessions_tokens_and_expiry() {
        let roots = RootKeys::generate(["111111111111"]);
        let store = KeyStore::new(&roots);
        let now = OffsetDateTime::now_utc();
        assert_eq!(
            store.secret("111111111111", None, now).as_deref(),
            Ok(roots.secret("111111111111").expect("root"))
        );
        assert_eq!(
            store.secret("111111111111", Some("token"), now),
            Err(KeyError::WrongToken)
        );
        assert_eq!(
            store.secret("222222222222", None, now),
            Err(KeyError::Unknown)
        );

        store.insert_session(
            "LSIAEXAMPLE",
            "session-secret",
            "token-1",
            now + Duration::hours(1),
        );
        assert_eq!(
            store.secret("LSIAEXAMPLE", Some("token-1"), now).as_deref(),
            Ok("session-secret")
        );
        assert_eq!(
            store.secret("LSIAEXAMPLE", None, now),
            Err(KeyError::WrongToken)
        );
        assert_eq!(
            store.secret("LSIAEXAMPLE", Some("token-2"), now),
            Err(KeyError::WrongToken)
        );
        assert_eq!(
            store.secret("LSIAEXAMPLE", Some("token-1"), now + Duration::hours(2)),
            Err(KeyError::Expired)
        );
        // The same key id drawn again for another session keeps both.
        store.insert_session("LSIAEXAMPLE", "second", "token-2", now + Duration::hours(1));
        assert_eq!(
            store.secret("LSIAEXAMPLE", Some("token-1"), now).as_deref(),
            Ok("session-secret")
        );
        assert_eq!(
            store.secret("LSIAEXAMPLE", Some("token-2"), now).as_deref(),
            Ok("second")
        );
    }
}
