//! Acting in another account: credentials from STS `AssumeRole`, fetched through the session's
//! call layer (limited, counted, retried, typed errors naming the account) and refreshed before
//! they expire.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{self, error::CredentialsError, ProvideCredentials};
use aws_credential_types::Credentials;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{AwsError, Layered};

/// An IAM role to act as: every call of a session with one is signed with the role's
/// temporary credentials, obtained with the caller's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssumeRole {
    /// `arn:aws:iam::<account>:role/<name>` (any partition).
    pub role_arn: String,
    /// The external id the role's trust policy asks for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// Why a role ARN was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{arn:?} is not an IAM role ARN (arn:<partition>:iam::<12-digit account>:role/<name>)")]
pub struct RoleArnError {
    /// The text given.
    pub arn: String,
}

impl AssumeRole {
    /// A role without an external id.
    ///
    /// # Errors
    /// [`RoleArnError`] when `role_arn` is not an IAM role ARN.
    pub fn new(role_arn: impl Into<String>) -> Result<Self, RoleArnError> {
        let role = Self {
            role_arn: role_arn.into(),
            external_id: None,
        };
        role.account()?;
        Ok(role)
    }

    /// The same role, assumed with `external_id`.
    #[must_use]
    pub fn with_external_id(mut self, external_id: impl Into<String>) -> Self {
        self.external_id = Some(external_id.into());
        self
    }

    /// The account that owns the role, read from its ARN.
    ///
    /// # Errors
    /// [`RoleArnError`] when the ARN is not an IAM role's.
    pub fn account(&self) -> Result<&str, RoleArnError> {
        let refused = || RoleArnError {
            arn: self.role_arn.clone(),
        };
        let parts: Vec<&str> = self.role_arn.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", partition, "iam", "", account, resource]
                if !partition.is_empty()
                    && account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && resource.strip_prefix("role/").is_some_and(|name| !name.is_empty()) =>
            {
                Ok(account)
            }
            _ => Err(refused()),
        }
    }
}

/// How long before their expiry assumed credentials are renewed: a call signed just before the
/// deadline must still reach AWS in time, and a slow STS must not leave a gap.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// How long the credentials asked for last (the default maximum of a role's session).
const SESSION_SECONDS: i32 = 3600;
/// The session name `CloudTrail` shows for the engine's calls.
const SESSION_NAME: &str = "miyabi-aws";

/// The credentials of one assumed role, shared by every Region's clients of a session: one
/// `AssumeRole` at a time (concurrent callers wait for it), reused until [`REFRESH_BEFORE`] their
/// expiry.
#[derive(Debug)]
pub(crate) struct AssumedRole {
    role: AssumeRole,
    sts: Layered<aws_sdk_sts::Client>,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl AssumedRole {
    pub(crate) fn new(role: AssumeRole, sts: Layered<aws_sdk_sts::Client>) -> Self {
        Self {
            role,
            sts,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// Valid credentials of the role, assuming it again when the cached ones are near expiry.
    ///
    /// # Errors
    /// The typed error of `sts.AssumeRole`, naming the account.
    pub(crate) async fn credentials(&self) -> Result<Credentials, AwsError> {
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref().filter(|c| fresh(c, SystemTime::now())) {
            return Ok(credentials.clone());
        }
        let out = self
            .sts
            .layer
            .call("AssumeRole", || {
                self.sts
                    .client
                    .assume_role()
                    .role_arn(&self.role.role_arn)
                    .role_session_name(SESSION_NAME)
                    .duration_seconds(SESSION_SECONDS)
                    .set_external_id(self.role.external_id.clone())
                    .send()
            })
            .await?;
        let credentials = out.credentials().map(|c| {
            Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_owned()),
                SystemTime::try_from(*c.expiration()).ok(),
                "miyabi-assume-role",
            )
        });
        let credentials = credentials.ok_or_else(|| {
            self.sts
                .layer
                .unreadable("AssumeRole", "the answer holds no credentials")
        })?;
        *cached = Some(credentials.clone());
        Ok(credentials)
    }
}

/// True while `credentials` are good for more than [`REFRESH_BEFORE`] after `now`.
fn fresh(credentials: &Credentials, now: SystemTime) -> bool {
    credentials
        .expiry()
        .is_none_or(|expiry| expiry.duration_since(now).is_ok_and(|left| left > REFRESH_BEFORE))
}

/// The SDK's view of an [`AssumedRole`].
#[derive(Debug, Clone)]
pub(crate) struct AssumedRoleProvider(pub(crate) Arc<AssumedRole>);

impl ProvideCredentials for AssumedRoleProvider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.0.credentials().await.map_err(CredentialsError::provider_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_arn_names_its_account() {
        let role = AssumeRole::new("arn:aws:iam::111111111111:role/Miyabi").unwrap();
        assert_eq!(role.account(), Ok("111111111111"));
        let china = AssumeRole::new("arn:aws-cn:iam::222222222222:role/path/Miyabi").unwrap();
        assert_eq!(china.account(), Ok("222222222222"));
        for bad in [
            "",
            "111111111111",
            "arn:aws:iam::1111:role/Miyabi",
            "arn:aws:iam::111111111111:user/alice",
            "arn:aws:iam::111111111111:role/",
            "arn:aws:sts::111111111111:assumed-role/Miyabi/x",
            "arn:aws:iam:us-east-1:111111111111:role/Miyabi",
        ] {
            assert!(AssumeRole::new(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn credentials_are_renewed_five_minutes_before_they_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let expiring = |secs| Credentials::new("a", "s", None, Some(now + Duration::from_secs(secs)), "test");
        assert!(fresh(&expiring(3600), now));
        assert!(fresh(&expiring(301), now));
        assert!(!fresh(&expiring(300), now));
        assert!(!fresh(
            &Credentials::new("a", "s", None, Some(now - Duration::from_secs(1)), "t"),
            now
        ));
        assert!(
            fresh(&Credentials::new("a", "s", None, None, "t"), now),
            "no expiry: never stale"
        );
    }
}
