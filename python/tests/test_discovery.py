import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import miyabi_aws
import pytest


def _without_capture_time(world):
    d = world.to_dict()
    d["scope"].pop("captured_at")
    return d


def test_discover_finds_what_boto3_sees(world, boto3_view, regions):
    assert not world.is_partial and world.gaps == []
    assert sorted(world.regions) == sorted(regions)
    assert {i["id"] for i in world.instances} == boto3_view["instance_ids"]
    assert {b["name"] for b in world.buckets} == boto3_view["buckets"]
    assert world.monthly_cost > 0
    failing = {f["check_id"] for f in world.findings if f["status"] == "FAIL"}
    assert "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22" in failing
    assert 0 < world.security_score < 100
    assert world.utilisation_percent is not None


def test_a_sync_call_releases_the_interpreter(regions):
    counted = 0
    running = threading.Event()
    done = threading.Event()

    def count():
        nonlocal counted
        running.set()
        while not done.is_set():
            counted += 1

    counter = threading.Thread(target=count)
    counter.start()
    running.wait()
    before = counted
    started = time.perf_counter()
    miyabi_aws.discover(regions)
    elapsed = time.perf_counter() - started
    progressed = counted - before
    done.set()
    counter.join()
    # Holding the interpreter would freeze the counter for the whole call.
    assert elapsed > 0.2
    assert progressed > 10_000, f"the counter advanced {progressed} times in {elapsed:.2f} s"


def test_discover_async_is_a_coroutine_on_the_shared_runtime(world, regions):
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        started = time.perf_counter()
        result = await miyabi_aws.discover_async(regions)
        elapsed = time.perf_counter() - started
        task.cancel()
        return result, ticks, elapsed

    result, ticks, elapsed = asyncio.run(main())
    assert _without_capture_time(result) == _without_capture_time(world)
    assert ticks >= max(3, int(elapsed / 0.01 / 4)), f"{ticks} ticks in {elapsed:.2f} s"


def test_two_threads_calling_at_once_get_the_same_estate(world, regions):
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: miyabi_aws.discover(regions), range(2)))
    for result in results:
        assert _without_capture_time(result) == _without_capture_time(world)


def test_a_rescan_built_on_the_previous_world_equals_a_full_one(regions):
    # One fixed end of the window, so that both scans see the same hours; nothing was published
    # in between, so the series asked again from their last point end as they were.
    until = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    base = miyabi_aws.discover(regions, until=until)
    again = miyabi_aws.discover(regions, until=until, previous=base)
    assert again.to_dict()["inventory"] == base.to_dict()["inventory"]
    assert len(base.to_dict()["inventory"]["metrics"]) > 0
    with pytest.raises(TypeError):
        miyabi_aws.discover(regions, previous={"not": "a world"})
