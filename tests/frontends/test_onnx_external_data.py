"""ONNX "external data" (tensor bytes in another file, at a path the model names) is refused."""
import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from neurocompile.cli.main import cli


def mlp(tmp_path, external: bool):
    w = numpy_helper.from_array(np.ones((3, 4), dtype=np.float32), "W")
    g = helper.make_graph([helper.make_node("Gemm", ["x", "W"], ["y"]), helper.make_node("Relu", ["y"], ["z"])],
                          "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "m.onnx"
    if external:
        onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="weights.bin", size_threshold=0)
    else:
        onnx.save_model(m, path)
    return path


@pytest.mark.parametrize("location", ["weights.bin", "/etc/passwd", "../../etc/passwd"])
def test_external_data_is_refused_before_reading(tmp_path, location):
    path = mlp(tmp_path, external=True)
    model = onnx.load(str(path), load_external_data=False)
    for e in model.graph.initializer[0].external_data:
        if e.key == "location":
            e.value = location
    onnx.save_model(model, path)
    r = CliRunner().invoke(cli, ["inspect", str(path)], catch_exceptions=False)
    assert r.exit_code == 2, r.output
    assert "external file" in r.output and location in r.output and "Traceback" not in r.output


def test_embedded_model_still_loads(tmp_path):
    r = CliRunner().invoke(cli, ["inspect", str(mlp(tmp_path, external=False))], catch_exceptions=False)
    assert r.exit_code == 0, r.output
