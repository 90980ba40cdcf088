"""Tree ensemble benchmark (#13): rows per second, one thread, at batch 1, 64 and 4096, for this server's tree
engine and the CPU evaluators users would otherwise pick, all timed by the same Python loop on the same rows.

  make bench-trees                     (or: .venv/bin/python bench/trees/run.py --out build/bench-trees)

Engines (each labelled as exactly what runs):
  this engine          the trees backend's evaluator + link, through ctypes (build/libtrees_bench_capi.so)
  this engine (ref.)   the same library's reference evaluator (Forest::Margins), one row and node at a time
  lightgbm / xgboost   Booster.predict / inplace_predict, num_threads / nthread = 1
  onnxruntime          the model converted by onnxmltools, one intra-op thread
  treelite (tl2cgen)   tl2cgen-compiled C (gcc -O3), one thread; treelite GTIL, treelite's own interpreter
  lleaves              lleaves' LLVM-compiled LightGBM model, n_jobs = 1
Every engine's predictions are compared with the library's before it is timed (the largest absolute
difference is reported). Each cell: REPEATS runs of SECONDS in random order, median rows/s.
"""
import argparse
import ctypes
import json
import pathlib
import random
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
BATCHES = (1, 64, 4096)


class ThisEngine:
    def __init__(self, path, reference=False):
        lib = ctypes.CDLL(str(ROOT / "build" / "libtrees_bench_capi.so"))
        lib.trees_load.restype = ctypes.c_void_p
        lib.trees_load.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.trees_width.restype = ctypes.c_size_t
        lib.trees_width.argtypes = [ctypes.c_void_p]
        predict = lib.trees_predict_reference if reference else lib.trees_predict
        predict.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        predict.restype = None
        error = ctypes.create_string_buffer(512)
        self.handle = lib.trees_load(str(path).encode(), error, 512)
        if not self.handle:
            raise RuntimeError(error.value.decode())
        self.width = lib.trees_width(self.handle)
        self.predict_c = predict
        self.out = np.empty((4096, self.width), dtype=np.float64)

    def predict(self, x):
        rows = x.shape[0]
        self.predict_c(self.handle, x.ctypes.data, rows, self.out.ctypes.data)
        return self.out[:rows]


def library_engine(library, path):
    if library == "lightgbm":
        import lightgbm
        booster = lightgbm.Booster(model_file=str(path))
        return lambda x: booster.predict(x, num_threads=1)
    import xgboost
    booster = xgboost.Booster(model_file=str(path))
    booster.set_param({"nthread": 1})
    return lambda x: booster.inplace_predict(x)


def onnx_engine(library, path, features, work):
    import onnxmltools
    import onnxruntime
    from onnxmltools.convert.common.data_types import FloatTensorType
    if library == "lightgbm":
        import lightgbm
        model = onnxmltools.convert_lightgbm(lightgbm.Booster(model_file=str(path)),
                                             initial_types=[("x", FloatTensorType([None, features]))], zipmap=False)
    else:
        import xgboost
        model = onnxmltools.convert_xgboost(xgboost.Booster(model_file=str(path)),
                                            initial_types=[("x", FloatTensorType([None, features]))])
    onnx_path = work / (path.parent.name + ".onnx")
    onnx_path.write_bytes(model.SerializeToString())
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    output = session.get_outputs()[-1].name  # the probabilities
    return lambda x: session.run([output], {"x": x})[0]


def tl2cgen_engine(library, path, work):
    import tl2cgen
    import treelite
    model = (treelite.frontend.load_lightgbm_model(str(path)) if library == "lightgbm"
             else treelite.frontend.load_xgboost_model(str(path)))
    lib = work / (path.parent.name + ".so")
    if not lib.exists():
        tl2cgen.export_lib(model, toolchain="gcc", libpath=str(lib), params={"parallel_comp": 16},
                           nthread=2)
    predictor = tl2cgen.Predictor(str(lib), nthread=1)
    return lambda x: predictor.predict(tl2cgen.DMatrix(x))


def gtil_engine(library, path):
    import treelite
    model = (treelite.frontend.load_lightgbm_model(str(path)) if library == "lightgbm"
             else treelite.frontend.load_xgboost_model(str(path)))
    return lambda x: treelite.gtil.predict(model, x, nthread=1)


def lleaves_engine(path, work):
    import lleaves
    model = lleaves.Model(model_file=str(path))
    model.compile(cache=str(work / (path.parent.name + ".lleaves.o")))
    return lambda x: model.predict(x, n_jobs=1)


def rows_per_second(predict, x, batch, seconds):
    batches = [np.ascontiguousarray(x[i:i + batch]) for i in range(0, x.shape[0] - batch + 1, batch)]
    rows = 0
    start = time.perf_counter()
    i = 0
    while True:
        predict(batches[i % len(batches)])
        rows += batch
        i += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return rows / elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "build" / "bench-trees"))
    parser.add_argument("--seconds", type=float, default=0.4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="", help="comma-separated subset")
    parser.add_argument("--engines", default="", help="comma-separated subset")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    models_dir = out / "models"
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    if not (models_dir / "models.json").exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "trees" / "make_models.py"), "--out", str(models_dir)],
                       check=True)
    models = json.loads((models_dir / "models.json").read_text())
    x = np.load(models_dir / "rows.npy")
    results = {"batches": BATCHES, "seconds": args.seconds, "repeats": args.repeats, "models": {}}
    for name, info in models.items():
        if args.models and name not in args.models.split(","):
            continue
        library = info["library"]
        path = models_dir / name / ("model.txt" if library == "lightgbm" else "model.json")
        expected = library_engine(library, path)(x)
        if expected.ndim == 1:
            expected = expected.reshape(-1, 1)
        makers = {
            "this engine": lambda: ThisEngine(path).predict,
            "this engine (reference evaluator)": lambda: ThisEngine(path, reference=True).predict,
            library: lambda: library_engine(library, path),
            "onnxruntime (onnxmltools)": lambda: onnx_engine(library, path, x.shape[1], work),
            "treelite (tl2cgen compiled)": lambda: tl2cgen_engine(library, path, work),
            "treelite (GTIL)": lambda: gtil_engine(library, path),
        }
        if library == "lightgbm":
            makers["lleaves"] = lambda: lleaves_engine(path, work)
        engines, notes = {}, {}
        for label, make in makers.items():
            if args.engines and label.split(" ")[0] not in args.engines.split(","):
                continue
            try:
                start = time.time()
                engine = make()
                got = np.asarray(engine(x), dtype=np.float64).reshape(x.shape[0], -1)
                if got.shape[1] == 1 and expected.shape[1] == 2:
                    got = np.hstack([1 - got, got])
                if expected.shape[1] == 1 and got.shape[1] == 2:
                    got = got[:, 1:]
                engines[label] = engine
                notes[label] = {"max_abs_diff": float(np.max(np.abs(got - expected))),
                                "setup_s": round(time.time() - start, 1)}
            except Exception as e:  # a peer that cannot load this model is reported, not fatal
                notes[label] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
            print(name, label, notes[label], flush=True)
        cells = [(label, batch) for label in engines for batch in BATCHES] * args.repeats
        random.Random(1).shuffle(cells)
        measured = {}
        for label, batch in cells:
            measured.setdefault(label, {}).setdefault(batch, []).append(
                rows_per_second(engines[label], x, batch, args.seconds))
        results["models"][name] = {
            "info": info,
            "engines": {label: {**notes[label],
                                "rows_per_s": {b: statistics.median(measured[label][b]) for b in BATCHES}
                                if label in measured else None}
                        for label in notes},
        }
        for label in engines:
            print(name, label, {b: round(results["models"][name]["engines"][label]["rows_per_s"][b])
                                for b in BATCHES}, flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=1))
    print("results:", out / "results.json")


if __name__ == "__main__":
    main()
