//! The execution plan: the changes that passed the guardrails, prioritised and ordered into
//! waves, each step with its precondition, backup, action, validation and rollback.

use std::collections::BTreeSet;

use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Action, Change};
use crate::guardrails::Guardrails;
use crate::world::Violation;

/// The execution-plan schema version this build writes.
pub const EXECUTION_PLAN_VERSION: u32 = 1;

/// P0 first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Priority {
    /// Removes a critical or high finding, or saves ≥ $500/month.
    P0,
    /// Removes a medium finding, or saves ≥ $100/month.
    P1,
    /// Removes a low finding, or saves ≥ $10/month.
    P2,
    /// The rest.
    P3,
}

/// What a wave holds. Waves run in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaveKind {
    /// One resize per target family, watched before the rest follow.
    Canary,
    /// Configuration changes: security remediations, gp2 → gp3.
    Configuration,
    /// The remaining resizes, stops of idle instances and volume encryption swaps: what stops
    /// an instance.
    Capacity,
    /// Release, delete, terminate: last, and never without explicit approval.
    Destructive,
}

/// An attribute of the resource and the value it must have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The attribute, for example `instance_type`.
    pub attribute: String,
    /// Its expected value; `null` when the resource must be gone.
    pub equals: Value,
}

/// How a step is undone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rollback {
    /// Set the attribute back to its recorded value.
    Revert {
        /// The attribute and its previous value.
        to: Expectation,
    },
    /// The change cannot be undone to an equal estate; the backup taken first is what remains.
    RestoreFromBackup {
        /// The backup.
        backup: String,
    },
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The change's content-derived id.
    pub id: String,
    /// Index of its wave.
    pub wave: usize,
    /// Its priority.
    pub priority: Priority,
    /// True for a resize run first as a canary.
    pub canary: bool,
    /// What must hold before acting; otherwise the estate has drifted and the step is refused.
    pub precondition: Expectation,
    /// The backup taken before acting, if the change is risky.
    pub backup: Option<String>,
    /// The API operations, in order.
    pub operations: Vec<String>,
    /// What must hold afterwards, read back from AWS.
    pub validation: Expectation,
    /// How to undo it.
    pub rollback: Rollback,
    /// True unless the guardrails let it run without a human.
    pub needs_approval: bool,
    /// Why it needs approval.
    pub approval_reasons: Vec<String>,
    /// The change itself.
    pub change: Change,
}

/// One wave of steps, run in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wave {
    /// 0-based position.
    pub index: usize,
    /// What it holds.
    pub kind: WaveKind,
    /// Its steps' ids, in order.
    pub steps: Vec<String>,
}

/// A change kept out of the plan: by the guardrails, or because its resource's capture is
/// partial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Excluded {
    /// The change's id.
    pub id: String,
    /// Why: a deny-listed operation, over the max-changes limit, or a partial capture.
    pub reason: String,
    /// The change.
    pub change: Change,
}

/// An execution-plan file that could not be read, or is not a valid plan of this build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed execution plan {}: {message}", .path.display())]
pub struct PlanFileError {
    /// The file.
    pub path: std::path::PathBuf,
    /// What is wrong, with its JSON path.
    pub message: String,
}

impl From<PlanFileError> for crate::Error {
    fn from(e: PlanFileError) -> Self {
        Self::PlanFile {
            path: e.path,
            message: e.message,
        }
    }
}

/// θ3's output and θ4's input, written as `execution_plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutionPlan {
    /// Always [`EXECUTION_PLAN_VERSION`] for plans this build writes.
    pub schema_version: u32,
    /// The steps, in execution order.
    pub steps: Vec<Step>,
    /// The waves.
    pub waves: Vec<Wave>,
    /// Changes kept out by the deny-list, the max-changes limit or a partial capture.
    pub excluded: Vec<Excluded>,
    /// Estimated monthly saving of all steps, USD.
    pub monthly_saving_usd: f64,
}

impl crate::artefact::Artefact for ExecutionPlan {
    const WHAT: &'static str = "an execution plan (θ3)";
}

impl ExecutionPlan {
    /// The inventory once the steps `keep` selects are applied (their desired state written in).
    #[must_use]
    pub fn project(
        &self,
        inventory: &crate::world::Inventory,
        keep: impl Fn(&Step) -> bool,
    ) -> crate::world::Inventory {
        let mut projected = inventory.clone();
        for step in self.steps.iter().filter(|s| keep(s)) {
            step.change.apply_to(&mut projected);
        }
        projected
    }

    /// Steps that may run now: those needing no approval, and those approved by id.
    pub fn applicable<'a>(&'a self, approved: &'a BTreeSet<String>) -> impl Iterator<Item = &'a Step> {
        self.steps
            .iter()
            .filter(move |s| !s.needs_approval || approved.contains(&s.id))
    }

    /// The document as pretty JSON, as `execution_plan.json` holds it.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| unreachable!("execution plan serialises: {e}"))
    }

    /// Reads an `execution_plan.json`, for example one a human reviewed.
    ///
    /// # Errors
    /// [`PlanFileError`] naming the file, and the JSON path of what is wrong.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self, PlanFileError> {
        let path = path.as_ref();
        let invalid = |message: String| PlanFileError {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
        Self::from_json(&text).map_err(|v| invalid(v.to_string()))
    }

    /// Parses an execution-plan document: its shape, its version, then its rules.
    ///
    /// # Errors
    /// The JSON path of what is wrong, and why.
    pub fn from_json(text: &str) -> Result<Self, Violation> {
        let mut de = serde_json::Deserializer::from_str(text);
        let plan: Self = serde_path_to_error::deserialize(&mut de).map_err(|e| Violation {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        if plan.schema_version != EXECUTION_PLAN_VERSION {
            return Err(Violation {
                path: "schema_version".into(),
                message: format!("{} (this build reads {EXECUTION_PLAN_VERSION})", plan.schema_version),
            });
        }
        plan.validate()?;
        Ok(plan)
    }

    /// What a plan must hold beyond its JSON shape: unique step ids, each step in an existing
    /// wave that lists it, and finite savings.
    ///
    /// # Errors
    /// The first rule broken, and where.
    pub fn validate(&self) -> Result<(), Violation> {
        let at = |path: String, message: String| Violation { path, message };
        let mut ids = BTreeSet::new();
        for (k, step) in self.steps.iter().enumerate() {
            if !ids.insert(step.id.as_str()) {
                return Err(at(format!("steps[{k}].id"), format!("{:?} appears twice", step.id)));
            }
            if step.id != step.change.id {
                return Err(at(
                    format!("steps[{k}].change.id"),
                    format!("{:?} is not the step's id {:?}", step.change.id, step.id),
                ));
            }
            let listed = self.waves.get(step.wave).is_some_and(|w| w.steps.contains(&step.id));
            if !listed {
                return Err(at(
                    format!("steps[{k}].wave"),
                    format!("wave {} does not exist or does not list the step", step.wave),
                ));
            }
            if !step.change.monthly_saving_usd.is_finite() {
                return Err(at(
                    format!("steps[{k}].change.monthly_saving_usd"),
                    "not a finite number".into(),
                ));
            }
        }
        for (w, wave) in self.waves.iter().enumerate() {
            if wave.index != w {
                return Err(at(format!("waves[{w}].index"), format!("{} is not {w}", wave.index)));
            }
            if let Some(k) = wave.steps.iter().position(|id| !ids.contains(id.as_str())) {
                return Err(at(
                    format!("waves[{w}].steps[{k}]"),
                    format!("no step {:?}", wave.steps[k]),
                ));
            }
        }
        if !self.monthly_saving_usd.is_finite() {
            return Err(at("monthly_saving_usd".into(), "not a finite number".into()));
        }
        Ok(())
    }

    /// The JSON Schema of the document, as committed in `schema/execution_plan.schema.json`.
    #[must_use]
    pub fn json_schema() -> Value {
        schemars::schema_for!(ExecutionPlan).as_value().clone()
    }
}

/// The priority of a change, by the worst finding it removes and its saving; a high-risk change
/// drops one level.
#[must_use]
pub fn priority(change: &Change, severity_of: impl Fn(&str) -> Option<crate::assessment::Severity>) -> Priority {
    use crate::assessment::Severity;
    let worst = change
        .removes_findings
        .iter()
        .filter_map(|c| severity_of(c))
        .max_by_key(|s| match s {
            Severity::Critical => 4,
            Severity::High => 3,
            Severity::Medium => 2,
            Severity::Low => 1,
            Severity::Informational => 0,
        });
    let saving = change.monthly_saving_usd;
    let base = if matches!(worst, Some(Severity::Critical | Severity::High)) || saving >= 500.0 {
        Priority::P0
    } else if matches!(worst, Some(Severity::Medium)) || saving >= 100.0 {
        Priority::P1
    } else if matches!(worst, Some(Severity::Low)) || saving >= 10.0 {
        Priority::P2
    } else {
        Priority::P3
    };
    if change.risk == super::Risk::High {
        match base {
            Priority::P0 => Priority::P1,
            Priority::P1 => Priority::P2,
            _ => Priority::P3,
        }
    } else {
        base
    }
}

/// `items` in the order of `order`, a permutation of its indices; each item moves once.
fn permute<T>(items: Vec<T>, order: &[usize]) -> Vec<T> {
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    order.iter().filter_map(|&i| slots[i].take()).collect()
}

/// The step that applies `change`: precondition, backup, validation and rollback.
fn step(change: Change, wave: usize, canary: bool, priority: Priority, guardrails: &Guardrails) -> Step {
    let approval_reasons = guardrails.approval_reasons(&change);
    let backup = backup_of(&change);
    let rollback = match &backup {
        Some(b) if change.is_destructive() => Rollback::RestoreFromBackup { backup: b.clone() },
        _ => Rollback::Revert {
            to: Expectation {
                attribute: change.attribute.clone(),
                equals: change.current.clone(),
            },
        },
    };
    Step {
        id: change.id.clone(),
        wave,
        priority,
        canary,
        precondition: Expectation {
            attribute: change.attribute.clone(),
            equals: change.current.clone(),
        },
        backup,
        operations: change.action.operations().iter().map(|s| (*s).to_owned()).collect(),
        validation: Expectation {
            attribute: change.attribute.clone(),
            equals: change.desired.clone(),
        },
        rollback,
        needs_approval: !approval_reasons.is_empty(),
        approval_reasons,
        change,
    }
}

fn wave_kind(action: Action) -> WaveKind {
    match action {
        a if a.is_destructive() => WaveKind::Destructive,
        // An encryption swap stops its instance like a resize, and comes after the
        // configuration wave's gp2 → gp3 change of the same volume, so that its copy is of the
        // new type.
        Action::ResizeInstance | Action::ResizeDbInstance | Action::StopInstance | Action::EncryptVolume => {
            WaveKind::Capacity
        }
        _ => WaveKind::Configuration,
    }
}

fn backup_of(change: &Change) -> Option<String> {
    let id = &change.resource.id;
    match change.action {
        Action::DeleteVolume => Some(match change.current.get("replaced_by").and_then(Value::as_str) {
            Some(copy) => format!("{copy}, the encrypted copy that replaced {id} (a snapshot if it is gone)"),
            None => format!("EBS snapshot of {id}"),
        }),
        Action::TerminateInstance => Some(format!("EBS snapshots of the volumes of {id}")),
        Action::ResizeDbInstance => Some(format!("RDS snapshot of {id}")),
        Action::ReleaseAddress => Some(format!("record of {id} and its public IP {}", change.current)),
        Action::RevokeIngress => Some(format!("record of the revoked rule of {id}")),
        Action::RestrictDefaultGroup => Some(format!("record of the rules of {id}")),
        Action::BlockPublicAccess
        | Action::EnableDefaultEncryption
        | Action::EnableVersioning
        | Action::EnableAccessLogging => Some(format!("record of the bucket settings of {id}")),
        Action::EncryptVolume => Some(format!(
            "EBS snapshot of {id} taken while its instance is stopped; {id} itself is kept, detached"
        )),
        Action::EncryptDbStorage => Some(format!(
            "encrypted copy of an RDS snapshot of {id}; the cutover can be undone until the old instance is deleted"
        )),
        Action::EnableEbsDefaultEncryption | Action::BlockSnapshotPublicAccess | Action::RequireImdsV2ByDefault => {
            Some(format!("record of the account setting in {}", change.resource.region))
        }
        _ => None,
    }
}

/// Splits `changes` into those on resources read whole and those held back, as exclusions,
/// because `coverage` says their resource's capture is partial: nothing is planned or changed on
/// what was not read whole.
#[must_use]
pub fn hold_partial(changes: Vec<Change>, coverage: &crate::world::Coverage) -> (Vec<Change>, Vec<Excluded>) {
    if coverage.is_whole() {
        return (changes, Vec::new());
    }
    let mut held = Vec::new();
    let kept = changes
        .into_iter()
        .filter_map(
            |change| match coverage.gap(&change.resource.region, &change.resource.id) {
                Some(why) => {
                    held.push(Excluded {
                        id: change.id.clone(),
                        reason: format!("the capture of {} is partial ({why})", change.resource.id),
                        change,
                    });
                    None
                }
                None => Some(change),
            },
        )
        .collect();
    (kept, held)
}

/// Allocates changes into an execution plan under `guardrails`: the deny-list first (a change
/// calling a denied operation never enters the plan), then priorities, the max-changes limit,
/// approvals, and the waves: canary resizes, configuration, capacity, destructive.
#[must_use]
pub fn allocate(
    changes: Vec<Change>,
    guardrails: &Guardrails,
    severity_of: impl Fn(&str) -> Option<crate::assessment::Severity>,
) -> ExecutionPlan {
    let mut excluded = Vec::new();
    let mut ranked = Vec::new();
    // A change is its content: the same change proposed twice is one step.
    let mut seen = std::collections::HashSet::with_capacity(changes.len());
    for change in changes {
        if !seen.insert(change.id.clone()) {
            continue;
        }
        let denied = guardrails.denied_operations(&change);
        if denied.is_empty() {
            ranked.push((priority(&change, &severity_of), change));
        } else {
            excluded.push(Excluded {
                id: change.id.clone(),
                reason: format!("deny-listed operation(s): {}", denied.join(", ")),
                change,
            });
        }
    }
    // Sorted by index: a change is a few hundred bytes, and a sort would move each many times.
    let mut order: Vec<usize> = (0..ranked.len()).collect();
    order.par_sort_by(|&x, &y| {
        let ((pa, a), (pb, b)) = (&ranked[x], &ranked[y]);
        pa.cmp(pb)
            .then(b.monthly_saving_usd.total_cmp(&a.monthly_saving_usd))
            .then_with(|| a.id.cmp(&b.id))
    });
    let mut ranked = permute(ranked, &order);
    if let Some(limit) = guardrails.max_changes {
        for (_, change) in ranked.split_off(limit.min(ranked.len())) {
            excluded.push(Excluded {
                id: change.id.clone(),
                reason: format!("over the limit of {limit} changes per run"),
                change,
            });
        }
    }

    // The first resize into each target family is its canary.
    let mut canary_families = BTreeSet::new();
    let placed: Vec<(WaveKind, bool, Priority, Change)> = ranked
        .into_iter()
        .map(|(priority, change)| {
            let family = change
                .desired
                .as_str()
                .and_then(|t| t.rsplit_once('.'))
                .map(|(f, _)| f.to_owned());
            let canary = change.action == Action::ResizeInstance && family.is_some_and(|f| canary_families.insert(f));
            let kind = if canary {
                WaveKind::Canary
            } else {
                wave_kind(change.action)
            };
            (kind, canary, priority, change)
        })
        .collect();
    let mut order: Vec<usize> = (0..placed.len()).collect();
    order.sort_by_key(|&i| placed[i].0);
    let placed = permute(placed, &order);

    let mut waves: Vec<Wave> = Vec::new();
    let mut in_waves = Vec::with_capacity(placed.len());
    for (kind, canary, priority, change) in placed {
        if waves.last().is_none_or(|w| w.kind != kind) {
            waves.push(Wave {
                index: waves.len(),
                kind,
                steps: Vec::new(),
            });
        }
        let wave = waves.len() - 1;
        waves[wave].steps.push(change.id.clone());
        in_waves.push((wave, canary, priority, change));
    }
    // Each step depends on its change alone, so thousands are written across cores.
    let steps: Vec<Step> = in_waves
        .into_par_iter()
        .map(|(wave, canary, priority, change)| step(change, wave, canary, priority, guardrails))
        .collect();
    let monthly_saving_usd = steps.iter().map(|s| s.change.monthly_saving_usd).sum();
    ExecutionPlan {
        schema_version: EXECUTION_PLAN_VERSION,
        steps,
        waves,
        excluded,
        monthly_saving_usd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ResourceRef, Risk};
    use crate::world::ResourceKind;

    #[test]
    fn the_same_change_twice_is_one_step() {
        let revoke = || {
            Change::new(
                Action::RevokeIngress,
                ResourceRef {
                    kind: ResourceKind::SecurityGroup,
                    id: "sg-1".into(),
                    region: "us-east-1".into(),
                },
                "ingress",
                serde_json::json!({"protocol": "tcp", "from_port": 22, "to_port": 22}),
                Value::Null,
                "prowler_ec2_securitygroup_ingress",
                "tcp port 22 is open to the internet".into(),
                Risk::Medium,
            )
        };
        let plan = allocate(vec![revoke(), revoke()], &Guardrails::default(), |_| None);
        assert_eq!(plan.steps.len(), 1);
        assert!(plan.validate().is_ok());
    }

    fn imds(id: &str, region: &str) -> Change {
        Change::new(
            Action::RequireImdsV2,
            ResourceRef {
                kind: ResourceKind::Ec2Instance,
                id: id.into(),
                region: region.into(),
            },
            "http_tokens",
            serde_json::json!("optional"),
            serde_json::json!("required"),
            "ec2_instance_imdsv2_enabled",
            "IMDSv2 is not required".into(),
            Risk::Low,
        )
    }

    #[test]
    fn changes_on_partial_resources_are_held_with_the_gap_that_names_them() {
        use crate::world::{Completeness, Coverage, ScanGap};
        let gap = |region: &str, resources: &[&str], operation: &str| ScanGap {
            region: region.into(),
            service: "ec2".into(),
            operation: operation.into(),
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
            error: "denied".into(),
        };
        let coverage = Coverage::of(&Completeness::Partial {
            gaps: vec![
                gap("us-east-1", &["i-named"], "GetMetricData"),
                gap("eu-west-1", &[], "DescribeVolumes"),
            ],
        });
        let changes = vec![
            imds("i-named", "us-east-1"),
            imds("i-whole", "us-east-1"),
            imds("i-in-held-region", "eu-west-1"),
        ];
        let (kept, held) = hold_partial(changes.clone(), &coverage);
        assert_eq!(
            kept.iter().map(|c| c.resource.id.as_str()).collect::<Vec<_>>(),
            ["i-whole"]
        );
        assert_eq!(held.len(), 2);
        assert!(held[0].reason.contains("i-named") && held[0].reason.contains("GetMetricData"));
        assert!(held[1].reason.contains("DescribeVolumes"), "{}", held[1].reason);
        // A whole capture holds nothing.
        let (kept, held) = hold_partial(changes, &Coverage::of(&Completeness::Complete));
        assert_eq!((kept.len(), held.len()), (3, 0));
    }
}
