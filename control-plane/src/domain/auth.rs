//! Who may do what: API token roles, the permissions each grants, the principal a request acts as, and token text (made, hashed, recognised).

use crate::domain::records::Tenant;
use crate::domain::state::{ParseStateError, named_enum};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// What a token may do, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including destructive operations (purging dead letters, deleting schedules).
    Admin,
    /// Author workflows, trigger and cancel runs, redrive, manage schedules; read everything.
    Operator,
    /// Serve tasks on the worker stream; nothing else.
    Worker,
    /// Read everything; change nothing.
    ReadOnly,
}

named_enum!(Role, "role", {
    Admin => "admin",
    Operator => "operator",
    Worker => "worker",
    ReadOnly => "read-only",
});

/// A kind of call, as far as roles are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read workflows, runs, events, dead letters, workers, queues, schedules.
    Read,
    /// Store workflow versions.
    Author,
    /// Trigger and cancel runs, redrive dead letters, create, change, pause and backfill schedules.
    Operate,
    /// Purge dead letters, delete schedules.
    Destroy,
    /// Hold a worker stream: receive tasks of the tenant and report their results.
    Work,
}

impl Role {
    /// Whether this role grants `p`.
    pub fn allows(self, p: Permission) -> bool {
        match self {
            Role::Admin => true,
            Role::Operator => match p {
                Permission::Read | Permission::Author | Permission::Operate => true,
                Permission::Destroy | Permission::Work => false,
            },
            Role::Worker => match p {
                Permission::Work => true,
                Permission::Read | Permission::Author | Permission::Operate | Permission::Destroy => false,
            },
            Role::ReadOnly => match p {
                Permission::Read => true,
                Permission::Author | Permission::Operate | Permission::Destroy | Permission::Work => false,
            },
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Permission::Read => "read",
            Permission::Author => "author workflows",
            Permission::Operate => "operate runs and schedules",
            Permission::Destroy => "delete",
            Permission::Work => "serve tasks",
        })
    }
}

/// Who a request acts as: the token's tenant and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: Tenant,
    pub role: Role,
    /// The token, or None when auth is off (`--insecure`).
    pub token_id: Option<Uuid>,
}

impl Principal {
    /// What every request is when auth is off: an admin of the default tenant.
    pub fn insecure() -> Self {
        Self { tenant: Tenant::default_tenant(), role: Role::Admin, token_id: None }
    }
}

/// Every token starts with this, so it is recognisable in logs and secret scanners.
pub const TOKEN_PREFIX: &str = "brd_";

/// A new token's text: the prefix and 32 random bytes (URL-safe base64). Shown once, never stored.
pub fn new_token_text() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored of a token: the SHA-256 of its text (the text has 256 random bits, so a plain
/// hash cannot be reversed by guessing).
pub fn token_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Whether `text` has the shape of a token (checked before any lookup).
pub fn looks_like_token(text: &str) -> bool {
    text.len() == TOKEN_PREFIX.len() + 43
        && text.starts_with(TOKEN_PREFIX)
        && text[TOKEN_PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_the_table_says() {
        use Permission::*;
        let grants = |r: Role| [Read, Author, Operate, Destroy, Work].map(|p| r.allows(p));
        assert_eq!(grants(Role::Admin), [true, true, true, true, true]);
        assert_eq!(grants(Role::Operator), [true, true, true, false, false]);
        assert_eq!(grants(Role::Worker), [false, false, false, false, true]);
        assert_eq!(grants(Role::ReadOnly), [true, false, false, false, false]);
        assert_eq!("read-only".parse::<Role>().unwrap(), Role::ReadOnly);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn tokens_are_random_recognisable_and_stored_hashed() {
        let a = new_token_text();
        let b = new_token_text();
        assert_ne!(a, b);
        assert!(looks_like_token(&a), "{a}");
        assert!(!looks_like_token("brd_short"));
        assert!(!looks_like_token(&a.replace("brd_", "xyz_")));
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
        assert!(!token_hash(&a).contains(&a[4..]));
    }
}
