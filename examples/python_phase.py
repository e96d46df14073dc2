"""A Python phase in the Rust cycle: θ2 that runs the Rust planning, then drops every change to a
resource tagged `miyabi:skip` — the kind of house rule a team keeps in Python.

    python examples/python_phase.py --region us-east-1 --out miyabi-out

It needs the wheel (`pip install .`) and AWS credentials (or `AWS_ENDPOINT_URL` pointing at an
emulator). The cycle is a dry run: nothing in the account changes.
"""

import argparse

import miyabi_aws


class SkipTagged:
    """θ2: the Rust planning, minus the changes to resources tagged `miyabi:skip`."""

    name = "planning (skips tagged)"
    theta = 2

    def __init__(self):
        self.rust = miyabi_aws.Planning()
        self.skipped = set()

    def run(self, context):
        outcome = self.rust.run(context)
        inventory = context.world.inventory
        tagged = {r.get("id") or r.get("name") for kind in ("instances", "volumes", "buckets", "db_instances")
                  for r in inventory[kind] if "miyabi:skip" in (r.get("tags") or {})}
        plan = context.plan.to_dict()
        for kind in ("cost", "security"):
            kept = [c for c in plan[kind] if c["resource"]["id"] not in tagged]
            self.skipped |= {c["resource"]["id"] for c in plan[kind]} - {c["resource"]["id"] for c in kept}
            plan[kind] = kept
        context.plan = miyabi_aws.Plan.from_dict(plan)
        return outcome


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--region", action="append", required=True, help="a Region to scan (repeatable)")
    parser.add_argument("--out", default="miyabi-out", help="where the reports go")
    args = parser.parse_args()

    planning = SkipTagged()
    cycle = miyabi_aws.Cycle([miyabi_aws.Discovery(args.region), planning, miyabi_aws.Optimization(),
                              miyabi_aws.Deployment(args.region)], max_iterations=1)
    report = cycle.run(out_dir=args.out)
    plan = report.get(miyabi_aws.ExecutionPlan)
    print(f"{len(plan.steps)} steps planned, ${plan.monthly_saving_usd:,.2f}/month; "
          f"skipped {len(planning.skipped)} tagged resource(s); reports in {args.out}")


if __name__ == "__main__":
    main()
