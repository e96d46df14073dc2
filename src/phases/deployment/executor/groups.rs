//! Security-group rules: one world-open rule revoked, or every rule of a default group, and
//! put back the same on rollback.

use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, UserIdGroupPair};
use serde_json::Value;

use super::SdkExecutor;
use crate::phases::deployment::DeployError;
use crate::plan::execution::Step;
use crate::world::SecurityGroupRule;

impl SdkExecutor {
    /// Revokes (`revoke`) or authorizes again the one rule the step names.
    pub(super) async fn ingress(&self, step: &Step, revoke: bool) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let id = &step.change.resource.id;
        let rule: SecurityGroupRule =
            serde_json::from_value(step.change.current.clone()).map_err(|e| DeployError::Unsupported {
                step: step.id.clone(),
                reason: format!("the step's rule is not a security-group rule: {e}"),
            })?;
        let permission = permission(&rule);
        if revoke {
            c.ec2
                .layer
                .call("RevokeSecurityGroupIngress", || {
                    c.ec2
                        .client
                        .revoke_security_group_ingress()
                        .group_id(id)
                        .ip_permissions(permission.clone())
                        .send()
                })
                .await?;
        } else {
            c.ec2
                .layer
                .call("AuthorizeSecurityGroupIngress", || {
                    c.ec2
                        .client
                        .authorize_security_group_ingress()
                        .group_id(id)
                        .ip_permissions(permission.clone())
                        .send()
                })
                .await?;
        }
        Ok(())
    }

    /// Revokes (`authorize` false) or authorizes the group's rules listed in `rules`
    /// (`{"ingress": [...], "egress": [...]}`), each direction in one request.
    pub(super) async fn group_rules(&self, step: &Step, rules: &Value, authorize: bool) -> Result<(), DeployError> {
        let c = self.clients(step)?;
        let id = &step.change.resource.id;
        let of = |direction: &str| -> Result<Vec<IpPermission>, DeployError> {
            let listed: Vec<SecurityGroupRule> = rules
                .get(direction)
                .cloned()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| DeployError::Unsupported {
                    step: step.id.clone(),
                    reason: format!("the step's {direction} rules are not security-group rules: {e}"),
                })?
                .unwrap_or_default();
            Ok(listed.iter().map(permission).collect())
        };
        let (ingress, egress) = (of("ingress")?, of("egress")?);
        let (ec2, layer) = (&c.ec2.client, &c.ec2.layer);
        if !ingress.is_empty() {
            let ingress = Some(ingress);
            if authorize {
                layer
                    .call("AuthorizeSecurityGroupIngress", || {
                        ec2.authorize_security_group_ingress()
                            .group_id(id)
                            .set_ip_permissions(ingress.clone())
                            .send()
                    })
                    .await?;
            } else {
                layer
                    .call("RevokeSecurityGroupIngress", || {
                        ec2.revoke_security_group_ingress()
                            .group_id(id)
                            .set_ip_permissions(ingress.clone())
                            .send()
                    })
                    .await?;
            }
        }
        if !egress.is_empty() {
            let egress = Some(egress);
            if authorize {
                layer
                    .call("AuthorizeSecurityGroupEgress", || {
                        ec2.authorize_security_group_egress()
                            .group_id(id)
                            .set_ip_permissions(egress.clone())
                            .send()
                    })
                    .await?;
            } else {
                layer
                    .call("RevokeSecurityGroupEgress", || {
                        ec2.revoke_security_group_egress()
                            .group_id(id)
                            .set_ip_permissions(egress.clone())
                            .send()
                    })
                    .await?;
            }
        }
        Ok(())
    }
}

/// The SDK's form of a rule of the world model.
fn permission(rule: &SecurityGroupRule) -> IpPermission {
    IpPermission::builder()
        .ip_protocol(&rule.protocol)
        .set_from_port(rule.from_port)
        .set_to_port(rule.to_port)
        .set_ip_ranges(Some(
            rule.ipv4_ranges
                .iter()
                .map(|c| IpRange::builder().cidr_ip(c).build())
                .collect(),
        ))
        .set_ipv6_ranges(Some(
            rule.ipv6_ranges
                .iter()
                .map(|c| Ipv6Range::builder().cidr_ipv6(c).build())
                .collect(),
        ))
        .set_user_id_group_pairs(Some(
            rule.group_ids
                .iter()
                .map(|g| UserIdGroupPair::builder().group_id(g).build())
                .collect(),
        ))
        .build()
}
