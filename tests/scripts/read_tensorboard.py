"""Reads a run directory's event files with TensorBoard's own reader and prints what it found as JSON: every
scalar (step, value) and the last one's wall time, every image (step, width, height, PNG bytes), the HParams
plugin's hyperparameters and which of its three messages are present. Used by tests/test_tensorboard.lua."""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

ea = EventAccumulator(sys.argv[1], size_guidance={"images": 0, "scalars": 0, "tensors": 0})
ea.Reload()
tags = ea.Tags()
out = {"scalars": {}, "images": {}, "hparams": {}, "hparams_messages": []}
for tag in tags["scalars"]:
    out["scalars"][tag] = [[e.step, e.value] for e in ea.Scalars(tag)]
    out["wall_time"] = ea.Scalars(tag)[-1].wall_time
for tag in tags["images"]:
    out["images"][tag] = [[e.step, e.width, e.height, len(e.encoded_image_string)] for e in ea.Images(tag)]
try:
    hparams = ea.PluginTagToContent("hparams")
except KeyError:   # a file without hyperparameters
    hparams = {}
for tag, content in hparams.items():
    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    out["hparams_messages"].append(data.WhichOneof("data"))
    if data.HasField("session_start_info"):
        for name, value in data.session_start_info.hparams.items():
            out["hparams"][name] = getattr(value, value.WhichOneof("kind"))
print(json.dumps(out))
