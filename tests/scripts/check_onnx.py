"""Checks an exported ONNX model with onnx's own checker and runs it with onnxruntime on the given input,
comparing its output with tshost's. Used by tests/test_onnx.lua.

Usage: check_onnx.py MODEL.onnx INPUT.f32 EXPECTED.f32 N C H W
(INPUT and EXPECTED: raw little-endian float32; EXPECTED has N rows). Prints one JSON line: the largest absolute
difference, that difference over the largest expected magnitude, the output's shape, the metadata."""
import json
import sys

import numpy as np
import onnx
import onnxruntime

path, inp, exp = sys.argv[1:4]
shape = [int(v) for v in sys.argv[4:8]]
model = onnx.load(path)
onnx.checker.check_model(model, full_check=True)
x = np.fromfile(inp, dtype=np.float32).reshape(shape)
expected = np.fromfile(exp, dtype=np.float32).reshape(shape[0], -1)
session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
y = session.run(None, {"images": x})[0].reshape(shape[0], -1)
diff = float(np.abs(y - expected).max())
print(json.dumps({"max_abs": diff, "relative": diff / float(np.abs(expected).max()), "shape": list(y.shape),
                  "metadata": {p.key: p.value for p in model.metadata_props},
                  "opset": model.opset_import[0].version}))
