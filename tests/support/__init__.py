"""The harness every test tier and the benchmarks share: real services started for a test (API
servers, stream workers, sidecars, fake engines that only heartbeat), generated results with
known contents, readers of what the stream decided, and :func:`~tests.support.waiting.wait_until`,
the one way a test waits for a state."""
