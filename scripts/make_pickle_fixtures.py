"""Writes the small pickles tests/test_pickle.lua reads (run once, commit the output):

    python3 scripts/make_pickle_fixtures.py

For each protocol 2-5 and each dtype a dict {'features', 'labels', 'sizes'} like the course's files, a
channels-first variant, numpy 2.x reconstruct paths (numpy._core...), a pickle whose reduce calls
os.system (must be refused), and expected values in expected.json. Needs only numpy.
"""
import io
import json
import os
import pickle
import pickletools

import numpy as np

OUT = "tests/fixtures/pickles"
rng = np.random.default_rng(7)
expected = {}


def dataset(dtype, channels_first=False):
    n = 5
    x = rng.integers(0, 256, size=(n, 4, 4, 3)).astype(dtype)
    if channels_first:
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    y = rng.integers(0, 43, size=n).astype(np.uint8 if dtype == np.uint8 else np.int64)
    sizes = rng.integers(25, 250, size=(n, 2)).astype(np.int32)
    return {"features": x, "labels": y, "sizes": sizes, "note": "not an array"}


def save(name, obj, protocol, data=None):
    raw = pickle.dumps(obj, protocol=protocol) if data is None else data
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(raw)
    if isinstance(obj, dict) and any(isinstance(v, np.ndarray) for v in obj.values()):
        expected[name] = {k: {"shape": list(v.shape), "sum": float(v.astype(np.float64).sum()),
                              "first": float(v.reshape(-1)[0]), "last": float(v.reshape(-1)[-1]),
                              "dtype": str(v.dtype)}
                          for k, v in obj.items() if isinstance(v, np.ndarray)}


for protocol in (2, 3, 4, 5):
    for dtype in (np.uint8, np.int32, np.int64, np.float32, np.float64):
        save(f"p{protocol}_{np.dtype(dtype).name}.pickle", dataset(dtype), protocol)
save("p3_uint8_channels_first.pickle", dataset(np.uint8, channels_first=True), 3)


def numpy2_paths(raw):
    """numpy 2.x writes numpy._core.multiarray where 1.x wrote numpy.core.multiarray."""
    raw = raw.replace(b"numpy.core.multiarray\n", b"numpy._core.multiarray\n")          # GLOBAL (protocol 2, 3)
    raw = raw.replace(b"\x8c\x15numpy.core.multiarray", b"\x8c\x16numpy._core.multiarray")  # SHORT_BINUNICODE (4, 5)
    return pickletools.optimize(raw)   # re-frames protocol 4/5 after the length change


for protocol in (3, 5):
    obj = dataset(np.uint8)
    save(f"p{protocol}_numpy2.pickle", obj, protocol, numpy2_paths(pickle.dumps(obj, protocol=protocol)))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/tshost_pwned",))


save("evil.pickle", {"features": Evil()}, 3)
save("bare_array.pickle", np.zeros(3), 3)

with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
print(len(expected), "pickles")
