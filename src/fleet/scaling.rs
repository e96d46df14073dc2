//! How many worker tasks a queue needs: the rule ECS's target tracking follows in the
//! deployment (`deploy/`), as a pure function to size the fleet and to set its target.
//!
//! A task runs `per_task` requests at once and a request takes `cycle_time`, so `n` tasks
//! drain a backlog of `depth` requests in `depth × cycle_time / (n × per_task)`. Holding that
//! under `max_wait` needs `n = ⌈depth × cycle_time / (per_task × max_wait)⌉` tasks, which is
//! target tracking on backlog per task with the target
//! [`backlog_per_task_target`] `= per_task × max_wait / cycle_time`.

use std::time::Duration;

/// What the fleet is sized by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sizing {
    /// Mean time one request takes (measured: `result.json`'s timings).
    pub cycle_time: Duration,
    /// Requests one task runs at once (`worker --concurrency`).
    pub per_task: u32,
    /// How long a request may wait before a task takes it.
    pub max_wait: Duration,
    /// Fewest tasks (1 keeps the queue polled).
    pub min_tasks: u32,
    /// Most tasks (500 in the deployment).
    pub max_tasks: u32,
}

impl Sizing {
    /// The plan's numbers: 15-minute cycles, one at a time, a request waiting at most one cycle,
    /// 1 to 500 tasks.
    #[must_use]
    pub fn plan() -> Self {
        Self {
            cycle_time: Duration::from_secs(15 * 60),
            per_task: 1,
            max_wait: Duration::from_secs(15 * 60),
            min_tasks: 1,
            max_tasks: 500,
        }
    }
}

/// The tasks needed for `depth` requests waiting or running, within the sizing's bounds.
#[must_use]
pub fn tasks_for(depth: u64, sizing: &Sizing) -> u32 {
    let capacity_secs = f64::from(sizing.per_task.max(1)) * sizing.max_wait.as_secs_f64();
    // A queue's depth is far below 2^52: exact as a float.
    #[allow(clippy::cast_precision_loss)]
    let work_secs = depth as f64 * sizing.cycle_time.as_secs_f64();
    let needed = if capacity_secs > 0.0 {
        (work_secs / capacity_secs).ceil()
    } else {
        f64::INFINITY
    };
    let lo = sizing.min_tasks.min(sizing.max_tasks);
    if needed >= f64::from(sizing.max_tasks) {
        return sizing.max_tasks.max(lo);
    }
    // In range of u32: below max_tasks, and never negative.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let needed = needed.max(0.0) as u32;
    needed.clamp(lo, sizing.max_tasks.max(lo))
}

/// The backlog per task that target tracking should hold for the sizing: the deployment's
/// `BacklogPerTask` parameter (`backlog_per_task` variable).
#[must_use]
pub fn backlog_per_task_target(sizing: &Sizing) -> f64 {
    let cycle = sizing.cycle_time.as_secs_f64();
    if cycle <= 0.0 {
        return f64::INFINITY;
    }
    f64::from(sizing.per_task.max(1)) * sizing.max_wait.as_secs_f64() / cycle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plans_numbers_give_one_task_per_waiting_request_up_to_500() {
        let plan = Sizing::plan();
        assert!((backlog_per_task_target(&plan) - 1.0).abs() < 1e-12);
        assert_eq!(tasks_for(0, &plan), 1, "one task keeps polling");
        assert_eq!(tasks_for(1, &plan), 1);
        assert_eq!(tasks_for(37, &plan), 37);
        assert_eq!(tasks_for(500, &plan), 500);
        assert_eq!(tasks_for(10_000, &plan), 500, "capped");
        assert_eq!(tasks_for(u64::MAX, &plan), 500);
    }

    #[test]
    fn faster_cycles_concurrency_and_patience_need_fewer_tasks() {
        let sizing = Sizing {
            cycle_time: Duration::from_secs(5 * 60),
            per_task: 2,
            max_wait: Duration::from_secs(30 * 60),
            min_tasks: 2,
            max_tasks: 50,
        };
        // 5-minute cycles, 2 at a time, 30 minutes of patience: one task clears 12 requests.
        assert!((backlog_per_task_target(&sizing) - 12.0).abs() < 1e-12);
        assert_eq!(tasks_for(12, &sizing), 2, "the floor");
        assert_eq!(tasks_for(37, &sizing), 4, "⌈37 / 12⌉");
        assert_eq!(tasks_for(1_000, &sizing), 50);
        // With no patience at all, as many tasks as allowed.
        let impatient = Sizing {
            max_wait: Duration::ZERO,
            ..sizing
        };
        assert_eq!(tasks_for(1, &impatient), 50);
        // A floor above the ceiling is the ceiling.
        let odd = Sizing {
            min_tasks: 80,
            ..sizing
        };
        assert_eq!(tasks_for(1, &odd), 50);
    }
}
