"""The legacy planning script as θ2 and θ3 of the engine's cycle, beside Rust phases.

    import miyabi_aws
    from miyabi_legacy.cycle_phases import LegacyPlanning, LegacyOptimization

    cycle = miyabi_aws.Cycle([miyabi_aws.Discovery(regions), LegacyPlanning(), LegacyOptimization(catalog),
                              miyabi_aws.Deployment(regions, apply=True, approve="all")])

θ2 puts a `Plan` (IMDSv2 remediations), θ3 reads it, adds its resizes and stops, and puts the
`ExecutionPlan` the Rust θ4 deploys. θ3 takes what θ6 taught the cycle, as the Rust θ3 does: the
learned headroom per family and when each resource last changed.
"""

import json

import miyabi_aws

from . import planning


class LegacyPlanning:
    """θ2: the script's security changes for the world's instances."""

    name = "planning (legacy python)"
    theta = 2

    def run(self, context):
        world = context.world
        if world is None:
            raise miyabi_aws.PhaseInputError("phase planning (legacy python) needs a world state (θ1)")
        changes = planning.security_changes(world.to_dict())
        context.plan = {"cost": [], "security": changes, "manual": []}
        return miyabi_aws.PhaseOutcome(applicable=len(changes))


class LegacyOptimization:
    """θ3: the script's right-sizing and idle rules, then its allocation of every change."""

    name = "optimization (legacy python)"
    theta = 3

    def __init__(self, catalog_path, config=None):
        with open(catalog_path, encoding="utf-8") as f:
            self.catalog = json.load(f)
        self.config = dict(config or {})

    def run(self, context):
        world, plan = context.world, context.plan
        if world is None or plan is None:
            raise miyabi_aws.PhaseInputError("phase optimization (legacy python) needs a world state (θ1) and a plan (θ2)")
        learned = context.get(miyabi_aws.LearnedHeadroom)
        config = {**self.config, "family_headroom_percent": {
            **self.config.get("family_headroom_percent", {}), **(learned.by_family if learned else {})}}
        times = context.get(miyabi_aws.ChangeTimes)
        doc = world.to_dict()
        own = planning.capacity_changes(doc, self.catalog, config, times.by_resource if times else None)
        execution_plan = planning.allocate(plan.security + plan.cost + own, doc, config)
        context.plan = {"cost": plan.cost + own, "security": plan.security, "manual": plan.manual}
        context.execution_plan = execution_plan
        return miyabi_aws.PhaseOutcome(applicable=sum(1 for s in execution_plan["steps"] if not s["needs_approval"]))
