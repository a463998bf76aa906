"""`reconcile.heap.long_lived`: what is alive on entry is out of the collector's sight
until the outermost block ends, and nothing stays frozen after it."""

import gc

from reconcile.heap import long_lived


def test_objects_alive_on_entry_stay_frozen_until_the_outermost_block_ends() -> None:
    assert gc.get_freeze_count() == 0
    with long_lived():
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with long_lived():
            assert gc.get_freeze_count() >= frozen
        assert gc.get_freeze_count() >= frozen  # the inner block's end keeps the freeze
    assert gc.get_freeze_count() == 0


def test_an_error_inside_the_block_still_ends_the_freeze() -> None:
    try:
        with long_lived():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0


def test_garbage_made_inside_the_block_is_still_collected() -> None:
    with long_lived():
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1


def test_cyclic_garbage_left_before_the_block_is_collected_not_frozen() -> None:
    import weakref

    class Node:
        pass

    node = Node()
    node.self = node  # type: ignore[attr-defined]
    alive = weakref.ref(node)
    del node
    gc.disable()  # no collection may run before the block's own
    try:
        with long_lived(collect_first=True):
            assert alive() is None
    finally:
        gc.enable()
