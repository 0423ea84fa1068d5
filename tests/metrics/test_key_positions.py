"""``services.key_positions``: the per-run mapping that line protocol uses gives exactly the per-sample one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from apps.metrics.ingest.types import ParseResult
from apps.metrics.services import key_positions

POOL = [(f"cpu_f{i}", (("host", f"h{i % 3}"),)) for i in range(8)]
# Runs are shared tuples (the parser's cached layouts) or one-off tuples (careful-path lines), possibly
# repeating a key within a line.
LAYOUTS = [tuple(POOL[:4]), tuple(POOL[2:7]), (POOL[0],)]
RUN = st.one_of(st.sampled_from(LAYOUTS),
                st.lists(st.sampled_from(POOL), min_size=1, max_size=5).map(tuple))


def samples(keys: list, positions: list) -> list:
    return [keys[p] for p in positions]


@given(st.lists(RUN, max_size=40))
def test_runs_give_the_same_samples_as_the_keys(runs: list[tuple]) -> None:
    keys = [key for run in runs for key in run]
    from_runs = key_positions(ParseResult(keys=keys, runs=runs))
    generic = key_positions(ParseResult(keys=keys))
    assert samples(*from_runs) == keys == samples(generic[0], generic[1].tolist())
    assert from_runs[0] == list(dict.fromkeys(keys)) == generic[0]  # distinct keys, first-seen order


def test_a_request_of_one_layout_maps_every_line() -> None:
    layout = tuple(POOL[:3])
    runs = [layout] * 4
    keys, positions = key_positions(ParseResult(keys=[k for r in runs for k in r], runs=runs))
    assert keys == list(layout)
    assert positions.tolist() == [0, 1, 2] * 4
