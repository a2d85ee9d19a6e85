"""Dynamic dimension names: which ones collide, and renaming them apart.

TensorRT's ONNX parser treats dynamic dimensions with one name as one dimension. That is
right for a batch dimension several inputs share, and wrong for exporters that write one
placeholder for every unknown dimension: paddle2onnx's classifier declares ``x`` as
``[-1, 3, '?', '?']``, and TensorRT then ties H to W (the build stops with "Input
dimensions with this name are inconsistent"). The rule lives here once: ``validate`` asks
:func:`shared_dim_names` and the prepare step :func:`make_dims_distinct` renames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Dim = int | str | None


def shared_dim_names(inputs: Mapping[str, Sequence[Dim]]) -> dict[str, list[tuple[str, int]]]:
    """Dynamic dim names used at more than one place: ``{name: [(input, axis), ...]}``.

    Args:
        inputs: each input's dims (ints for static, names for named dynamic dims, None for
            unnamed ones), as :func:`trtops.onnx_facts.read_graph` gives them.
    """
    places: dict[str, list[tuple[str, int]]] = {}
    for input_name, dims in inputs.items():
        for axis, dim in enumerate(dims):
            if isinstance(dim, str) and dim:
                places.setdefault(dim, []).append((input_name, axis))
    return {name: where for name, where in places.items() if len(where) > 1}


def repeated_within_an_input(inputs: Mapping[str, Sequence[Dim]]) -> dict[str, list[tuple[str, int]]]:
    """The shared names that occur twice in one input (a placeholder, never a real tie:
    two axes of one tensor that must always be equal are rare, and a profile that needs them
    equal still builds after renaming)."""
    out = {}
    for name, where in shared_dim_names(inputs).items():
        per_input: dict[str, int] = {}
        for input_name, _axis in where:
            per_input[input_name] = per_input.get(input_name, 0) + 1
        if any(count > 1 for count in per_input.values()):
            out[name] = where
    return out


def distinct_name(input_name: str, axis: int) -> str:
    """The name a repeated dim gets: ``<input>_dim<axis>``."""
    return f"{input_name}_dim{axis}"


def make_dims_distinct(model: Any) -> list[str]:
    """Rename dims repeated within one input to :func:`distinct_name` (in place).

    Returns:
        One line per renamed dim (``x[2]: '?' -> 'x_dim2'``).
    """
    from trtops.prepare.graph import real_inputs

    values = real_inputs(model.graph)
    dims = {v.name: [d.dim_param if d.dim_param else None for d in v.type.tensor_type.shape.dim]
            for v in values}
    repeated = repeated_within_an_input(dims)
    notes = []
    taken = {d for ds in dims.values() for d in ds if d}
    for value in values:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.dim_param and dim.dim_param in repeated:
                new = distinct_name(value.name, axis)
                while new in taken:
                    new += "_"
                taken.add(new)
                notes.append(f"{value.name}[{axis}]: {dim.dim_param!r} -> {new!r}")
                dim.dim_param = new
    return notes
