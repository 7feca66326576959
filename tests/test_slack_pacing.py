"""The sink's Slack calls stay inside the published limits: no 60-second window over the limit, order kept."""

from __future__ import annotations

import asyncio

from handlers.pacing import Budget, PacedWebClient, TokenBucket


class FakeClock:
    """Virtual time, so the test runs instantly and exactly."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)  # still let other tasks run, as a real sleep would


class RecordingClient:
    timeout = 7

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, str | None, float]] = []

    async def chat_postMessage(self, **kwargs):
        self.calls.append(("chat.postMessage", kwargs.get("channel"), self.clock.now))
        return {"ok": True}

    async def chat_update(self, **kwargs):
        self.calls.append(("chat.update", kwargs.get("channel"), self.clock.now))
        return {"ok": True}

    async def auth_test(self):
        self.calls.append(("auth.test", None, self.clock.now))
        return {"ok": True}


def busiest_minute(times: list[float]) -> int:
    return max((sum(1 for t in times if start <= t < start + 60) for start in times), default=0)


async def test_bursts_are_paced_to_the_per_minute_limit():
    clock = FakeClock()
    client = RecordingClient(clock)
    paced = PacedWebClient(client, clock=clock, sleep=clock.sleep)

    async def post(channel: str, count: int) -> None:
        for _ in range(count):
            await paced.chat_postMessage(channel=channel, text="x")

    await asyncio.gather(post("C1", 150), post("C2", 30))
    for _ in range(120):
        await paced.chat_update(channel="C1", ts="1", text="y")

    posts_c1 = [t for method, channel, t in client.calls if method == "chat.postMessage" and channel == "C1"]
    posts_c2 = [t for method, channel, t in client.calls if method == "chat.postMessage" and channel == "C2"]
    updates = [t for method, _, t in client.calls if method == "chat.update"]
    assert len(posts_c1) == 150 and len(posts_c2) == 30 and len(updates) == 120  # nothing dropped
    assert busiest_minute(posts_c1) <= 60 and busiest_minute(posts_c2) <= 60
    assert busiest_minute(updates) <= 50
    assert max(posts_c2) < max(posts_c1) / 4  # a quiet channel is not held up behind a busy one's queue


async def test_unpaced_methods_and_attributes_pass_through():
    clock = FakeClock()
    client = RecordingClient(clock)
    paced = PacedWebClient(client)
    assert paced.timeout == 7
    await paced.auth_test()
    assert client.calls == [("auth.test", None, 0.0)]


async def test_a_bucket_refills_at_its_rate():
    clock = FakeClock()
    bucket = TokenBucket(Budget(per_minute=60, burst=10, per_channel=True), clock=clock, sleep=clock.sleep)
    for _ in range(10):
        await bucket.take()
    assert clock.now == 0.0
    await bucket.take()
    assert abs(clock.now - 60 / 50) < 1e-9  # one token at 50 a minute
