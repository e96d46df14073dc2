//! Which accounts a fleet run works in: a list of roles, or every active account of an
//! organization with a role of one name in each.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::aws::{AssumeRole, AwsError, AwsOptions, AwsSession, RoleArnError};

/// One account to work in, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccountTarget {
    /// The 12-digit account id.
    pub account_id: String,
    /// The role assumed in it; `None` acts with the caller's own credentials (the management
    /// account of an organization, or a single-account run).
    pub role: Option<AssumeRole>,
}

impl AccountTarget {
    /// The account of `role`.
    ///
    /// # Errors
    /// [`RoleArnError`] when the role's ARN names no account.
    pub fn assuming(role: AssumeRole) -> Result<Self, RoleArnError> {
        Ok(Self {
            account_id: role.account()?.to_owned(),
            role: Some(role),
        })
    }

    /// A session acting in this account: `base` with the account's role, if any.
    #[must_use]
    pub fn session(&self, base: &AwsOptions) -> AwsSession {
        let session = AwsSession::new(AwsOptions {
            assume_role: self.role.clone(),
            ..base.clone()
        });
        session.with_account(&self.account_id)
    }
}

/// Where the accounts come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountSource {
    /// These roles, one account each.
    Roles(Vec<AssumeRole>),
    /// Every active account of the caller's organization (the caller must be its management
    /// account or a delegated administrator): the role `role_name` in each member, the caller's
    /// own credentials in the caller's account.
    Organization {
        /// The role's name in every member account (`OrganizationAccountAccessRole`, say).
        role_name: String,
        /// The external id the roles' trust policies ask for, if any.
        external_id: Option<String>,
    },
}

/// Lists the accounts of `source`. For an organization, `caller` (the management account's
/// session) pages through `ListAccounts` and keeps the `ACTIVE` ones.
///
/// # Errors
/// The [`AwsError`] of `GetCallerIdentity` or `ListAccounts`, naming the caller's account.
pub async fn resolve(
    source: &AccountSource,
    caller: &AwsSession,
    region: &str,
) -> Result<Vec<AccountTarget>, AwsError> {
    let (role_name, external_id) = match source {
        AccountSource::Roles(roles) => {
            let mut targets: Vec<AccountTarget> = Vec::with_capacity(roles.len());
            for role in roles {
                // `AssumeRole` values come checked from `AssumeRole::new`; a hand-built one
                // with a bad ARN is refused at its first call instead.
                let account_id = role.account().unwrap_or(role.role_arn.as_str()).to_owned();
                if !targets.iter().any(|t| t.account_id == account_id) {
                    targets.push(AccountTarget {
                        account_id,
                        role: Some(role.clone()),
                    });
                }
            }
            return Ok(targets);
        }
        AccountSource::Organization { role_name, external_id } => (role_name, external_id),
    };
    let me = caller.verify(region).await?;
    let clients = caller.clients(region).await;
    let org = &clients.organizations;
    let mut active: Vec<String> = Vec::new();
    org.layer
        .pages(
            "ListAccounts",
            |token| org.client.list_accounts().set_next_token(token).send(),
            aws_sdk_organizations::operation::list_accounts::ListAccountsOutput::next_token,
            |page| {
                for account in page.accounts() {
                    let is_active = account
                        .state()
                        .map(|s| s.as_str() == "ACTIVE")
                        .or_else(|| account.status().map(|s| s.as_str() == "ACTIVE"))
                        .unwrap_or(false);
                    if let Some(id) = account.id().filter(|_| is_active) {
                        active.push(id.to_owned());
                    }
                }
            },
        )
        .await?;
    active.sort();
    active.dedup();
    let partition = caller_partition(caller, region).await;
    Ok(active
        .into_iter()
        .map(|account_id| {
            let role = (account_id != me).then(|| AssumeRole {
                role_arn: format!("arn:{partition}:iam::{account_id}:role/{role_name}"),
                external_id: external_id.clone(),
            });
            AccountTarget { account_id, role }
        })
        .collect())
}

/// The partition of the caller's ARN (`aws`, `aws-cn`, `aws-us-gov`), `aws` when unknown.
async fn caller_partition(caller: &AwsSession, region: &str) -> String {
    let clients = caller.clients(region).await;
    let sts = &clients.sts;
    sts.layer
        .call("GetCallerIdentity", || sts.client.get_caller_identity().send())
        .await
        .ok()
        .and_then(|me| me.arn().and_then(|arn| arn.split(':').nth(1)).map(str::to_owned))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "aws".to_owned())
}

/// Runs `work` for every target, at most `max_concurrent` at a time (at least 1), and returns
/// the results in the order of `targets`: one account's failure never stops the others.
pub async fn for_each_account<T, F, Fut>(targets: &[AccountTarget], max_concurrent: usize, work: F) -> Vec<T>
where
    F: Fn(AccountTarget) -> Fut,
    Fut: Future<Output = T>,
{
    let work = Arc::new(work);
    let mut done: Vec<(usize, T)> = futures::stream::iter(targets.iter().cloned().enumerate())
        .map(|(k, target)| {
            let work = Arc::clone(&work);
            async move { (k, work(target).await) }
        })
        .buffer_unordered(max_concurrent.max(1))
        .collect()
        .await;
    done.sort_by_key(|(k, _)| *k);
    done.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn roles_give_one_target_per_account_in_order() {
        let roles = vec![
            AssumeRole::new("arn:aws:iam::222222222222:role/R").unwrap(),
            AssumeRole::new("arn:aws:iam::111111111111:role/R")
                .unwrap()
                .with_external_id("x"),
            AssumeRole::new("arn:aws:iam::222222222222:role/Other").unwrap(),
        ];
        let caller = AwsSession::default();
        let targets = resolve(&AccountSource::Roles(roles), &caller, "us-east-1")
            .await
            .unwrap();
        let ids: Vec<&str> = targets.iter().map(|t| t.account_id.as_str()).collect();
        assert_eq!(
            ids,
            ["222222222222", "111111111111"],
            "one per account, first role wins"
        );
        assert_eq!(targets[1].role.as_ref().unwrap().external_id.as_deref(), Some("x"));
    }

    #[tokio::test]
    async fn accounts_run_concurrently_up_to_the_cap_and_report_in_order() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let targets: Vec<AccountTarget> = (0..7)
            .map(|k| AccountTarget {
                account_id: format!("{k:012}"),
                role: None,
            })
            .collect();
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let out = for_each_account(&targets, 3, |t| {
            let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                // Later accounts finish first: the order returned is still the targets'.
                let k: u64 = t.account_id.parse().unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(40 - 5 * k)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                t.account_id
            }
        })
        .await;
        assert_eq!(out, targets.iter().map(|t| t.account_id.clone()).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 3, "the cap is reached and never passed");
    }
}
