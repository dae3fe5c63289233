"""Topics read together must be co-partitioned, or a worker would see half of a run."""

from __future__ import annotations

import pytest

from streams.errors import PartitionMismatchError
from streams.topics import check_copartitioned
from wire import Topic, Topics, topic_name


def _counts(**overrides: int) -> dict[str, int]:
    counts = {topic_name(t, "p"): 8 for t in Topic}
    counts.update({topic_name(Topic(k.replace("_", "-") + ".v1"), "p"): v
                   for k, v in overrides.items()})  # fmt: skip
    return counts


def test_equal_counts_pass_and_unrelated_topics_may_differ() -> None:
    check_copartitioned(_counts(results=4, partials=16), Topics("p"))


@pytest.mark.parametrize("topic", ["run_events", "metrics", "engine_status", "commands"])
def test_a_mismatch_names_both_topics(topic: str) -> None:
    with pytest.raises(PartitionMismatchError, match=r"need as many partitions each: .* has 4"):
        check_copartitioned(_counts(**{topic: 4}), Topics("p"))
