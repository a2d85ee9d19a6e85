"""Generated inputs (profiles, seeds, ranges, dtypes) and user inputs (npz/npy, no pickles)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from gate_helpers import accuracy_spec, embedding_io, mlp_io

from trtops.engine_io import EngineIO, ProfileShapes, TensorIO
from trtops.errors import InputError
from trtops.gate.inputs import generate_input_sets, load_user_inputs, match_inputs


def test_min_opt_max_of_every_profile():
    io = mlp_io(profiles=[((1, 8), (4, 8), (16, 8)), ((32, 8), (48, 8), (64, 8))])
    sets = generate_input_sets(io, accuracy_spec())
    assert [(s.label, s.profile, s.shapes["x"]) for s in sets] == [
        ("profile0/min", 0, (1, 8)),
        ("profile0/opt", 0, (4, 8)),
        ("profile0/max", 0, (16, 8)),
        ("profile1/min", 1, (32, 8)),
        ("profile1/opt", 1, (48, 8)),
        ("profile1/max", 1, (64, 8)),
    ]
    for s in sets:
        assert s.feeds["x"].dtype == np.float32
        assert 0.0 <= s.feeds["x"].min() and s.feeds["x"].max() < 1.0  # default float range


def test_identical_points_are_merged():
    io = mlp_io(profiles=[((8, 8), (8, 8), (8, 8)), ((1, 8), (16, 8), (16, 8))])
    labels = [s.label for s in generate_input_sets(io, accuracy_spec())]
    assert labels == ["profile0/min=opt=max", "profile1/min", "profile1/opt=max"]


def test_iterations_give_different_values_per_shape():
    sets = generate_input_sets(mlp_io(), accuracy_spec(iterations=2))
    assert [s.label for s in sets][:2] == ["profile0/min#1", "profile0/min#2"]
    assert not np.array_equal(sets[0].feeds["x"], sets[1].feeds["x"])


def test_seeded_and_reproducible():
    first = generate_input_sets(mlp_io(), accuracy_spec(seed=3))
    again = generate_input_sets(mlp_io(), accuracy_spec(seed=3))
    other = generate_input_sets(mlp_io(), accuracy_spec(seed=4))
    for a, b, c in zip(first, again, other, strict=False):
        assert np.array_equal(a.feeds["x"], b.feeds["x"])
        assert not np.array_equal(a.feeds["x"], c.feeds["x"])
    # Adding a profile does not change the values of the existing one.
    more = generate_input_sets(mlp_io(profiles=[((1, 8), (4, 8), (16, 8)), ((2, 8), (2, 8), (2, 8))]),
                               accuracy_spec(seed=3))
    for a, b in zip(first, more, strict=False):
        assert np.array_equal(a.feeds["x"], b.feeds["x"])
    # negative seeds are valid manifest values
    assert generate_input_sets(mlp_io(), accuracy_spec(seed=-1))


def test_integer_ranges_are_respected_and_high_is_exclusive():
    sets = generate_input_sets(embedding_io(), accuracy_spec(ranges=[("ids", 0, 30522)]))
    ids = np.concatenate([s.feeds["ids"].ravel() for s in sets])
    assert ids.dtype == np.int64
    assert ids.min() >= 0 and ids.max() <= 30521
    assert ids.max() > 2  # actually spread over the range
    tiny = generate_input_sets(embedding_io(), accuracy_spec(ranges=[("ids", 5, 6)]))
    assert all((s.feeds["ids"] == 5).all() for s in tiny)


def test_default_integer_and_bool_ranges():
    io = EngineIO(
        tensors=(TensorIO("n", "input", "int32", (4, 4)), TensorIO("m", "input", "bool", (4, 4)),
                 TensorIO("y", "output", "float32", (4,))),
        profiles=(),
    )
    (static,) = generate_input_sets(io, accuracy_spec())
    assert static.label == "static" and static.profile == 0
    assert static.feeds["n"].dtype == np.int32 and set(np.unique(static.feeds["n"])) <= {0, 1}
    assert static.feeds["m"].dtype == np.bool_
    assert list(static.feeds) == ["n", "m"]  # the engine's order


def test_float_range_and_float16_dtype():
    io = EngineIO((TensorIO("x", "input", "float16", (2, 64)),), ())
    (s,) = generate_input_sets(io, accuracy_spec(ranges=[("x", -3.0, -2.0)]))
    assert s.feeds["x"].dtype == np.float16
    assert s.feeds["x"].min() >= -3.0 and s.feeds["x"].max() <= -2.0


def test_range_errors():
    with pytest.raises(InputError, match="'idz'.*not an input") as info:
        generate_input_sets(embedding_io(), accuracy_spec(ranges=[("idz", 0, 10)]))
    assert "ids" in info.value.hint
    with pytest.raises(InputError, match="does not fit its dtype int32"):
        generate_input_sets(embedding_io("int32"), accuracy_spec(ranges=[("ids", 0, 2**40)]))
    with pytest.raises(InputError, match="contains no value"):
        generate_input_sets(embedding_io(), accuracy_spec(ranges=[("ids", 0.2, 0.9)]))


def test_dynamic_input_without_profile_is_an_error():
    io = EngineIO((TensorIO("x", "input", "float32", (-1, 8)),), ())
    with pytest.raises(InputError, match="dynamic shape"):
        generate_input_sets(io, accuracy_spec())


def test_bfloat16_inputs_are_refused_clearly():
    io = EngineIO((TensorIO("x", "input", "bfloat16", (2, 2)),), ())
    with pytest.raises(InputError, match="bfloat16"):
        generate_input_sets(io, accuracy_spec())


# --------------------------------------------------------------------------- user data


def test_npz_file_is_one_set(tmp_path):
    path = tmp_path / "sample.npz"
    np.savez(path, x=np.ones((2, 8), np.float32))
    (s,) = load_user_inputs(path)
    assert s.label == "data/sample" and s.profile == -1 and s.source == str(path)
    assert s.shapes == {"x": (2, 8)}


def test_directory_of_npy_is_one_set(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((3, 8), np.float32))
    (s,) = load_user_inputs(tmp_path)
    assert s.shapes == {"x": (3, 8)}


def test_directory_of_npz_and_subdirectories(tmp_path):
    np.savez(tmp_path / "b.npz", x=np.ones((2, 8), np.float32))
    np.savez(tmp_path / "a.npz", x=np.ones((1, 8), np.float32))
    (tmp_path / "c").mkdir()
    np.save(tmp_path / "c" / "x.npy", np.ones((5, 8), np.float32))
    sets = load_user_inputs(tmp_path)
    assert [(s.label, s.shapes["x"]) for s in sets] == [
        ("data/a", (1, 8)), ("data/b", (2, 8)), ("data/c", (5, 8))]


def test_pickled_npz_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match=r"evil\.npz \(array 'x'\) holds pickled"):
        load_user_inputs(path)


def test_pickled_npy_is_refused_naming_the_file(tmp_path):
    np.save(tmp_path / "x.npy", np.array([1, "a", None], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"x\.npy holds pickled"):
        load_user_inputs(tmp_path)


def test_raw_pickle_disguised_as_npz_is_refused(tmp_path):
    path = tmp_path / "data.npz"
    path.write_bytes(pickle.dumps({"x": [1, 2, 3]}))
    with pytest.raises(InputError, match="data.npz holds pickled"):
        load_user_inputs(path)


def test_bad_paths(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_user_inputs(tmp_path / "nope.npz")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no .npy or .npz"):
        load_user_inputs(empty)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(InputError, match="not a readable .npz"):
        load_user_inputs(tmp_path / "text.npz")


def test_match_inputs_picks_the_profile_and_casts():
    io = EngineIO(
        tensors=(TensorIO("ids", "input", "int32", (-1, -1)), TensorIO("y", "output", "float32", (-1,))),
        profiles=(ProfileShapes((("ids", (1, 1), (1, 8), (1, 16)),)),
                  ProfileShapes((("ids", (2, 1), (4, 8), (8, 64)),))),
    )
    from trtops.gate.inputs import InputSet

    sets = [InputSet("data/a", -1, {"ids": np.zeros((1, 4), np.int64)}),
            InputSet("data/b", -1, {"ids": np.zeros((4, 32), np.int64)})]
    a, b = match_inputs(io, sets)
    assert (a.profile, b.profile) == (0, 1)
    assert a.feeds["ids"].dtype == np.int32

    with pytest.raises(InputError, match="fit none of the engine's profiles") as info:
        match_inputs(io, [InputSet("data/c", -1, {"ids": np.zeros((9, 4), np.int64)})])
    assert "profile 1" in info.value.hint
    with pytest.raises(InputError, match="missing ids; unknown tokens"):
        match_inputs(io, [InputSet("data/d", -1, {"tokens": np.zeros((1, 4), np.int64)})])
    with pytest.raises(InputError, match="holds float32 values"):
        match_inputs(io, [InputSet("data/e", -1, {"ids": np.zeros((1, 4), np.float32)})])
    with pytest.raises(InputError, match="outside int32"):
        match_inputs(io, [InputSet("data/f", -1, {"ids": np.full((1, 4), 2**40, np.int64)})])


def test_match_inputs_static_engine():
    io = EngineIO((TensorIO("x", "input", "float32", (2, 8)),), ())
    from trtops.gate.inputs import InputSet

    (s,) = match_inputs(io, [InputSet("data/a", -1, {"x": np.ones((2, 8), np.float64)})])
    assert s.profile == 0 and s.feeds["x"].dtype == np.float32
    with pytest.raises(InputError, match="fit none") as info:
        match_inputs(io, [InputSet("data/a", -1, {"x": np.ones((3, 8), np.float32)})])
    assert "static" in info.value.hint


def test_a_huge_static_input_is_refused_before_anything_is_allocated():
    """A model whose static input needs 4 TB: a clear error naming it, never a MemoryError."""
    io = EngineIO(tensors=(TensorIO("small", "input", "float32", (1, 8)),
                           TensorIO("huge", "input", "float32", (1_000_000, 1_000_000)),
                           TensorIO("y", "output", "float32", (1, 8))), profiles=())
    with pytest.raises(InputError) as caught:
        generate_input_sets(io, accuracy_spec())
    message = caught.value.message
    assert "input 'huge' of shape [1000000, 1000000]" in message and "3.64 TiB" in message
    assert "accuracy.data" in (caught.value.hint or "")


def test_a_huge_profile_max_is_refused_at_its_point():
    io = mlp_io(profiles=[((1, 8), (4, 8), (1 << 30, 8))])
    with pytest.raises(InputError, match=r"at profile0/max would take 32 GiB"):
        generate_input_sets(io, accuracy_spec())
