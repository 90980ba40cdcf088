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

With --servers, the same models are also served, one at a time, by this server (trees backend, one instance)
and by MLServer 1.7.1 with its LightGBM / XGBoost runtimes (.deps/mlserver-venv), and one client
(tritonclient, KServe v2 gRPC, inputs as raw bytes) sends requests of 1, 64 and 4096 rows back to back.
"""
import argparse
import ctypes
import json
import os
import pathlib
import random
import signal
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


COMPILE_S = 300  # --compile-s


def tl2cgen_engine(library, path, work):
    """tl2cgen generates C for the model and gcc compiles it (parallel_comp: 16 files, two at a time)."""
    import tl2cgen
    lib = work / (path.parent.name + ".so")
    if not lib.exists():
        load = "load_lightgbm_model" if library == "lightgbm" else "load_xgboost_model"
        compile_bounded(f"import tl2cgen, treelite\nm = treelite.frontend.{load}({str(path)!r})\n"
                        f"tl2cgen.export_lib(m, toolchain='gcc', libpath={str(lib)!r}, params={{'parallel_comp': 16}}, "
                        f"nthread=2)\n", "tl2cgen's gcc build")
    predictor = tl2cgen.Predictor(str(lib), nthread=1)
    return lambda x: predictor.predict(tl2cgen.DMatrix(x))


def gtil_engine(library, path):
    import treelite
    model = (treelite.frontend.load_lightgbm_model(str(path)) if library == "lightgbm"
             else treelite.frontend.load_xgboost_model(str(path)))
    return lambda x: treelite.gtil.predict(model, x, nthread=1)


def compile_bounded(script, what):
    """Runs a compiler's Python `script` in its own process group, killed (with its compilers) after
    COMPILE_S: a compilation that takes longer is reported instead of waited for. What compiles is cached in
    the work folder (the model's .so / .lleaves.o), so a later run reuses it."""
    if COMPILE_S <= 0:
        raise RuntimeError(f"{what} not attempted (--compile-s 0)")
    child = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if child.wait(timeout=COMPILE_S) != 0:
            raise RuntimeError(f"{what} failed")
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        raise RuntimeError(f"{what} did not finish within {COMPILE_S} s") from None


def lleaves_engine(path, work):
    import lleaves
    cache = work / (path.parent.name + ".lleaves.o")
    if not cache.exists():
        compile_bounded(f"import lleaves\nlleaves.Model(model_file={str(path)!r}).compile(cache={str(cache)!r})\n",
                        "lleaves' LLVM compilation")
    model = lleaves.Model(model_file=str(path))
    model.compile(cache=str(cache))
    return lambda x: model.predict(x, n_jobs=1)


def server_bench_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("server_bench", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grpc_predict(port, model, output):
    import tritonclient.grpc as tg
    client = tg.InferenceServerClient(f"127.0.0.1:{port}")

    def predict(x):
        inp = tg.InferInput("input__0", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        result = client.infer(model, [inp], outputs=[tg.InferRequestedOutput(output)])
        return result.as_numpy(output)
    return predict


def serve_ours(sb, models_dir, names, work):
    repo = work / "repo-ours"
    import shutil
    shutil.rmtree(repo, ignore_errors=True)
    for name in names:
        (repo / name / "1").mkdir(parents=True)
        source = models_dir / name
        for f in source.iterdir():
            shutil.copy(f, repo / name / "1")
        (repo / name / "config.pbtxt").write_text(
            'backend: "trees"\nmax_batch_size: 4096\ninstance_group [ { count: 1 kind: KIND_CPU } ]\n')
    http, grpc_port, metrics = sb.free_port(), sb.free_port(), sb.free_port()
    server = sb.Process("inference-server", [str(ROOT / "build" / "inference-server"), "--model-repository", str(repo),
                                             "--host", "127.0.0.1", "--http-port", str(http), "--grpc-port",
                                             str(grpc_port), "--metrics-port", str(metrics),
                                             "--access-log-sample-rate", "0"],
                        sb.http_ready(http), open(work / "ours.log", "wb"))
    return server, grpc_port, "output__0"


def serve_mlserver(sb, models_dir, names, models, work):
    import shutil
    root = work / "mlserver-trees"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    http, grpc_port, metrics = sb.free_port(), sb.free_port(), sb.free_port()
    (root / "settings.json").write_text(json.dumps({"host": "127.0.0.1", "http_port": http, "grpc_port": grpc_port,
                                                    "metrics_port": metrics, "parallel_workers": 0}))
    for name in names:
        lightgbm = models[name]["library"] == "lightgbm"
        (root / name).mkdir()
        (root / name / "model-settings.json").write_text(json.dumps({
            "name": name,
            "implementation": "mlserver_lightgbm.LightGBMModel" if lightgbm else "mlserver_xgboost.XGBoostModel",
            "parameters": {"uri": str(models_dir / name / ("model.txt" if lightgbm else "model.json"))}}))
    server = sb.Process("mlserver", [str(sb.MLSERVER), "start", str(root)], sb.http_ready(http),
                        open(work / "mlserver-trees.log", "wb"))
    return server, grpc_port, None


def run_servers(models_dir, models, names, x, args, work, results):
    sb = server_bench_module()
    for label, start in (("this server (trees backend), v2 gRPC", lambda: serve_ours(sb, models_dir, names, work)),
                         ("MLServer 1.7.1 (mlserver-lightgbm / mlserver-xgboost), v2 gRPC",
                          lambda: serve_mlserver(sb, models_dir, names, models, work))):
        try:
            server, port, output = start()
        except Exception as e:
            results["servers"][label] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
            print(label, results["servers"][label], flush=True)
            continue
        try:
            for name in names:
                predict = grpc_predict(port, name, output or "predict")  # MLServer's runtimes answer "predict"
                got = np.asarray(predict(x[:256]), dtype=np.float64).reshape(256, -1)
                results["servers"].setdefault(label, {})[name] = {"first_output_columns": got.shape[1]}
                cells = [b for b in BATCHES] * args.repeats
                random.Random(2).shuffle(cells)
                measured = {}
                for b in cells:
                    measured.setdefault(b, []).append(rows_per_second(predict, x, b, args.seconds))
                results["servers"][label][name]["rows_per_s"] = {b: statistics.median(measured[b]) for b in BATCHES}
                print(label, name, {b: round(v) for b, v in results["servers"][label][name]["rows_per_s"].items()},
                      flush=True)
        finally:
            server.stop()


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
    global COMPILE_S
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "build" / "bench-trees"))
    parser.add_argument("--seconds", type=float, default=0.4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="", help="comma-separated subset")
    parser.add_argument("--engines", default="", help="comma-separated subset")
    parser.add_argument("--servers", action="store_true", help="also through this server and MLServer")
    parser.add_argument("--resume", action="store_true", help="keep the models already in results.json")
    parser.add_argument("--compile-s", type=int, default=COMPILE_S,
                        help="how long tl2cgen's and lleaves' compilation of one model may take (0: not tried)")
    parser.add_argument("--server-models", default="lgb_small_binary,xgb_small_binary,lgb_large_binary,xgb_large_10class",
                        help="the models served in the --servers part")
    args = parser.parse_args()
    COMPILE_S = args.compile_s
    out = pathlib.Path(args.out).resolve()  # MLServer resolves a relative model uri against its settings
    models_dir = out / "models"
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    if not (models_dir / "models.json").exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "trees" / "make_models.py"), "--out", str(models_dir)],
                       check=True)
    models = json.loads((models_dir / "models.json").read_text())
    x = np.load(models_dir / "rows.npy")
    results = {"batches": BATCHES, "seconds": args.seconds, "repeats": args.repeats, "models": {}, "servers": {}}
    if args.resume and (out / "results.json").exists():
        results = json.loads((out / "results.json").read_text())
        results["batches"] = BATCHES
    for name, info in models.items():
        if (args.models and name not in args.models.split(",")) or name in results["models"]:
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
    if args.servers:
        results["servers"] = {}  # one run, even with --resume
        run_servers(models_dir, models, [n for n in args.server_models.split(",") if n in models], x, args, work,
                    results)
        (out / "results.json").write_text(json.dumps(results, indent=1))
    print("results:", out / "results.json")


if __name__ == "__main__":
    main()
