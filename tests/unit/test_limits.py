from signaling.limits import FloodGuard, TokenBucket


def test_it_allows_a_burst_then_refills_at_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(0.05)  # half a token
    assert bucket.take(0.1)
    assert not bucket.take(0.1)


def test_it_never_stores_more_than_the_burst() -> None:
    bucket = TokenBucket(rate=100, burst=2)
    bucket.take(0.0)
    assert [bucket.take(60.0) for _ in range(3)] == [True, True, False]


def test_a_flood_is_cut_off_after_the_strikes() -> None:
    guard = FloodGuard(TokenBucket(rate=1, burst=1), max_strikes=3)
    assert guard.admit(0.0)
    assert not guard.admit(0.0)
    assert not guard.admit(0.0)
    assert not guard.exhausted
    assert not guard.admit(0.0)
    assert guard.exhausted


def test_a_polite_client_gets_no_strikes() -> None:
    guard = FloodGuard(TokenBucket(rate=10, burst=5), max_strikes=1)
    assert all(guard.admit(i * 0.1) for i in range(100))
    assert guard.strikes == 0
