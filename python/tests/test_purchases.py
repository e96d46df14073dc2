"""θ3's purchase recommendations reach Python with the plan: priced, sized to the steady
baseline, and always waiting for approval."""

import miyabi_aws


def test_optimize_returns_purchases_sized_below_the_spend_and_waiting_for_approval(world):
    purchases = miyabi_aws.optimize(world)["purchases"]
    assert "as of 2020-07-09" in purchases["rates"]
    kinds = {o["commitment"] for o in purchases["options"]}
    assert {"compute_savings_plan", "ec2_instance_savings_plan"} <= kinds, kinds
    assert purchases["recommended"], purchases["not_covered"]
    for option in purchases["options"]:
        assert option["approval_reasons"], option
        # The baseline is a minimum over the hours: it never covers more than the mean spend.
        assert 0 < option["coverage_percent"] <= 100 + 1e-9, option
        assert option["commitment_hourly_usd"] < option["covered_on_demand_hourly_usd"], option
        if option["term"] == "3yr":
            assert "a 3-year term" in option["approval_reasons"], option
    recommended = purchases["recommended"][0]
    assert (recommended["term"], recommended["payment"]) == ("1yr", "no_upfront")
