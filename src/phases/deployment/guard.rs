//! The execution-time guardrails: a decorator around any [`StepExecutor`].
//!
//! It judges each step from its change alone (the operations its action calls, the approval
//! reasons the policy gives), never from what the plan file says about itself, so a hand-edited
//! plan gains nothing. A refused step sends no request: reads pass through, everything that
//! could change AWS is stopped here.

use async_trait::async_trait;
use serde_json::Value;

use super::executor::{Backup, Checkpoint, StepExecutor};
use super::{Approval, DeployError};
use crate::guardrails::Guardrails;
use crate::plan::execution::Step;

/// A [`StepExecutor`] that enforces `guardrails` and `approval` before delegating.
#[derive(Debug, Clone)]
pub struct Guarded<E> {
    inner: E,
    guardrails: Guardrails,
    approval: Approval,
}

impl<E> Guarded<E> {
    /// Wraps `inner`.
    pub fn new(inner: E, guardrails: Guardrails, approval: Approval) -> Self {
        Self {
            inner,
            guardrails,
            approval,
        }
    }

    fn check(&self, step: &Step) -> Result<(), DeployError> {
        self.check_denied(step)?;
        let reasons = self.guardrails.approval_reasons(&step.change);
        if !reasons.is_empty() && !self.approval.approves(&step.id) {
            return Err(DeployError::Refused {
                step: step.id.clone(),
                reason: format!("needs approval: {}", reasons.join("; ")),
            });
        }
        Ok(())
    }

    fn check_denied(&self, step: &Step) -> Result<(), DeployError> {
        let refused = |reason: String| DeployError::Refused {
            step: step.id.clone(),
            reason,
        };
        // The action's own operations and whatever the step lists, in case the file was edited.
        let mut denied: Vec<String> = self
            .guardrails
            .denied_operations(&step.change)
            .into_iter()
            .map(str::to_owned)
            .collect();
        denied.extend(
            step.operations
                .iter()
                .filter(|op| self.guardrails.deny_list.contains(op))
                .cloned(),
        );
        if !denied.is_empty() {
            denied.sort();
            denied.dedup();
            return Err(refused(format!("deny-listed operation(s): {}", denied.join(", "))));
        }
        Ok(())
    }
}

#[async_trait]
impl<E: StepExecutor> StepExecutor for Guarded<E> {
    async fn read(&self, step: &Step) -> Result<Value, DeployError> {
        self.inner.read(step).await
    }

    async fn backup(&self, step: &Step) -> Result<Option<Backup>, DeployError> {
        self.check(step)?;
        self.inner.backup(step).await
    }

    async fn apply(&self, step: &Step, checkpoint: &dyn Checkpoint) -> Result<(), DeployError> {
        self.check(step)?;
        self.inner.apply(step, checkpoint).await
    }

    /// Undoing needs no approval (it restores what was approved before), only the deny-list.
    async fn revert(&self, step: &Step, backup: Option<&Backup>) -> Result<(), DeployError> {
        self.check_denied(step)?;
        self.inner.revert(step, backup).await
    }

    async fn restore_service(&self, step: &Step) -> Result<(), DeployError> {
        self.check_denied(step)?;
        self.inner.restore_service(step).await
    }

    async fn tag(&self, step: &Step) -> Result<(), DeployError> {
        self.check(step)?;
        self.inner.tag(step).await
    }
}
