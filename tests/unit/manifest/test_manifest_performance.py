"""``performance.shapes`` from ``defaults:`` (trtops.manifest.check_performance): they apply
to every model, so a model they do not fit gets an error at the ``defaults:`` line that
names the model and says how to opt it out, and the opt-out works."""

from __future__ import annotations

import pytest
from helpers import make_conv_model, write_manifest

from trtops.cli import main
from trtops.errors import ManifestError
from trtops.manifest.collect import load_paths
from trtops.manifest.expand import expand

MANIFEST = """\
version: 1
defaults:
  performance:
    shapes: {{batch1: {{input: [1, 3, 16, 16]}}}}
targets: {{lab: {{gpu: any}}}}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp32]
    profiles:
      - input: {{min: [1, 3, 8, 8], opt: [2, 3, 16, 16], max: [4, 3, 32, 32]}}
  - name: other
    source: models/other.onnx
    precisions: [fp32]
{opt_out}    profiles:
      - image: {{min: [1, 3, 8, 8], opt: [2, 3, 16, 16], max: [4, 3, 32, 32]}}
"""


@pytest.fixture
def project(tmp_path):
    make_conv_model(tmp_path / "models" / "conv.onnx")
    make_conv_model(tmp_path / "models" / "other.onnx", input_name="image")
    return tmp_path


def test_default_shapes_a_model_lacks_point_at_defaults_and_say_how_to_opt_out(project, capsys):
    path = write_manifest(project, MANIFEST.format(opt_out=""))
    with pytest.raises(ManifestError) as caught:
        load_paths([path], check_models=False)
    [problem] = caught.value.problems
    assert (problem.location.line, problem.field) == (4, "defaults.performance.shapes.batch1.input")
    assert problem.message == ("model 'other': shape case 'batch1' names 'input', which no "
                               "profile covers")
    assert problem.hint == ("the profiles' inputs: image; or opt model 'other' out with "
                            "`performance: {shapes: {}}` on it")
    capsys.readouterr()
    assert main(["validate", str(path)]) == 1
    assert "m.yaml:4:23: defaults.performance.shapes.batch1.input: model 'other': " in \
        capsys.readouterr().err


def test_an_empty_shapes_on_the_model_opts_it_out_of_the_defaults(project):
    # the hint's advice, taken: the model's own (empty) shapes replace the defaults'
    path = write_manifest(project, MANIFEST.format(opt_out="    performance: {shapes: {}}\n"))
    specs = {s.model: s.performance for s in expand(load_paths([path], check_models=False))}
    assert specs["other"].shapes == ()
    assert specs["conv"].shapes == (("batch1", (("input", (1, 3, 16, 16)),)),)


BUDGETED = """\
version: 1
defaults:
  performance: {{max_seconds: 0.5}}
targets: {{lab: {{gpu: any}}}}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp32]
{own}  - name: other
    source: models/other.onnx
    precisions: [fp32]
"""


def test_max_seconds_reaches_the_measurement_settings_default_then_model(project):
    path = write_manifest(project, BUDGETED.format(own="    performance: {max_seconds: 10}\n"))
    settings = {s.model: s.performance.settings() for s in expand(load_paths([path], check_models=False))}
    assert settings["conv"]["max_seconds"] == 10.0 and settings["other"]["max_seconds"] == 0.5
    unset = write_manifest(project, BUDGETED.format(own="").replace("performance: {max_seconds: 0.5}",
                                                                    "performance: {}"))
    assert {s.performance.max_seconds for s in expand(load_paths([unset], check_models=False))} == {2.0}


@pytest.mark.parametrize("value", ["0", "-1", "3601", "2s"])
def test_a_bad_max_seconds_is_a_manifest_error(project, value):
    path = write_manifest(project, BUDGETED.format(own="").replace("0.5", value))
    with pytest.raises(ManifestError) as caught:
        load_paths([path], check_models=False)
    assert any(p.field == "defaults.performance.max_seconds" for p in caught.value.problems)
