"""PyTorch as a benchmark engine: the Python twin of bench/worker.ts, speaking the same protocol
over stdin/stdout, so that bench/run.ts times it in turn with the other engines.

    /usr/bin/python3 bench/torch_worker.py '<task JSON>'

The task is bench/worker.ts's WorkerTask (engine "pytorch", arch, batch, threads, modelsDir,
input [C, H, W], warmup, tolerance) with one of these modes:

  serve      torchvision's <arch> with the weights of <arch>.pth (bench/export_onnx.py), traced and
             frozen by TorchScript (torch.jit.trace + torch.jit.freeze, eval mode, no_grad) on
             torch.set_num_threads(threads) and one inter-op thread; its logits at the check input
             are compared with ours (<arch>.reference.safetensors) before anything is timed.
             Prints {"ready": true}, then times one slice of runs per command line read from stdin
             ({"minTimeMs", "maxTimeMs", "minIterations"}) and prints {"slice": true, "timesMs",
             "cpuCores", "otherLoadCores"} for each, until {"done": true}; then the row.
  coldstart  what a user's script does: import torch and torchvision, load <arch>.pth, run the
             eager model once on the image in "imagePath" (float32, [1, C, H, W]) and print
             {"logits", "maxRssKiB"} at once (bench/run.ts times the process up to that line).

Progress goes to stderr; every answer is one JSON line on stdout; an error is {"error": ...}.
Needs torch and torchvision (Debian's python3-torch 1.13 / python3-torchvision 0.14) and numpy.
"""

import json
import os
import resource
import sys
import time
import traceback

TASK = json.loads(sys.argv[1])
# /proc/stat counts in USER_HZ ticks (bench/system.ts assumes 100, what every Linux we run on has).
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def emit(line):
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def model_file(kind):
    """bench/models/<arch>.<kind>, as engines.ts's modelFile."""
    return os.path.join(TASK["modelsDir"], f"{TASK['arch']}.{kind}")


def eager_model(torch, torchvision):
    """torchvision's <arch> with <arch>.pth loaded strictly, in eval mode."""
    model = getattr(torchvision.models, TASK["arch"])(weights=None)
    model.load_state_dict(torch.load(model_file("pth"), map_location="cpu"))
    return model.eval()


def set_threads(torch):
    torch.set_num_threads(TASK["threads"])
    try:
        torch.set_num_interop_threads(1)  # as onnxruntime-node's interOpNumThreads
    except RuntimeError:
        pass  # only settable before the first parallel work; the default pool is then used


def os_thread_count():
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def peak_rss_kib():
    """VmHWM of /proc/self/status, not ru_maxrss, which Linux carries over exec from the parent (bench/system.ts's peakRssKiB)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def machine_busy_seconds():
    """Busy CPU seconds of the whole machine so far, from /proc/stat (bench/system.ts's machineBusySeconds)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    steal = fields[7] if len(fields) > 7 else 0
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND


def relative_difference(a, reference):
    """max|a - reference| / max|reference| (worker.ts's relativeDifference): infinity on a shape or NaN mismatch."""
    import numpy as np

    if a.shape != reference.shape:
        return float("inf")
    diff = float(np.max(np.abs(a.astype(np.float64) - reference)))
    return float("inf") if diff != diff else diff / float(np.max(np.abs(reference)))


def time_slice(run, command, warmup):
    """One slice, counted as src/tools/bench.ts's timeRuns counts adaptive runs (at most 50)."""
    for _ in range(warmup):
        run()
    times = []
    busy_start, cpu_start, wall_start = machine_busy_seconds(), time.process_time(), time.perf_counter()
    while True:
        spent = (time.perf_counter() - wall_start) * 1000
        if len(times) >= 50 or (len(times) >= command["minIterations"] and spent >= command["minTimeMs"]):
            break
        if len(times) >= 1 and spent >= command["maxTimeMs"]:
            break
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
        print(f"  {TASK['arch']} batch {TASK['batch']} on pytorch: measure {len(times)}: {times[-1]:.1f} ms", file=sys.stderr)
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start  # every thread of this process (CLOCK_PROCESS_CPUTIME_ID)
    busy_end = machine_busy_seconds()
    other = None if busy_start is None or busy_end is None else max(0.0, (busy_end - busy_start - cpu) / wall)
    return {"slice": True, "timesMs": times, "cpuCores": cpu / wall, "otherLoadCores": other}


def serve():
    threads_before = os_thread_count()
    import numpy as np
    import torch
    import torchvision

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
    from fixture_io import read_safetensors

    set_threads(torch)
    check_input = torch.from_numpy(read_safetensors(model_file("check.safetensors"))["input"])
    ours = read_safetensors(model_file("reference.safetensors"))["logits"]
    with torch.no_grad():
        frozen = torch.jit.freeze(torch.jit.trace(eager_model(torch, torchvision), check_input))
        rel_diff = relative_difference(frozen(check_input).numpy(), ours)
    base = {"engine": TASK["engine"], "arch": TASK["arch"], "batch": TASK["batch"], "threads": TASK["threads"], "relDiff": rel_diff}
    if not rel_diff < TASK["tolerance"]:
        return {**base, "error": f"output differs from ours: max |Δ| / max |logit| = {rel_diff:.2e} ≥ {TASK['tolerance']}"}
    # Timing ignores the values: any input of the shape, from a fixed seed.
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (TASK["batch"], *TASK["input"])).astype(np.float32))

    def run():
        with torch.no_grad():
            return frozen(x)

    start = time.perf_counter()
    for _ in range(TASK["warmup"]):
        start = time.perf_counter()
        run()
    last_ms = (time.perf_counter() - start) * 1000
    emit({"ready": True})
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        if command.get("done"):
            break
        # As worker.ts: one untimed run brings the weights back into the caches after the other engines ran.
        answer = time_slice(run, command, 1 if last_ms < 500 else 0)
        last_ms = float(np.median(answer["timesMs"]))
        emit(answer)
    capability = next((l.split(":", 1)[1].strip() for l in torch.__config__.show().splitlines() if "CPU capability usage" in l), None)
    return {
        **base,
        "osThreadsAdded": None if threads_before is None else os_thread_count() - threads_before,
        "details": {
            "version": torch.__version__,
            "torchvision": torchvision.__version__,
            "numThreads": torch.get_num_threads(),
            "interopThreads": torch.get_num_interop_threads(),
            "atenCpuCapability": capability,
            "mkldnn": torch.backends.mkldnn.is_available(),
            "module": "torch.jit.trace + torch.jit.freeze, eval, no_grad",
        },
    }


def coldstart():
    import numpy as np
    import torch
    import torchvision

    set_threads(torch)
    model = eager_model(torch, torchvision)
    image = torch.from_numpy(np.fromfile(TASK["imagePath"], dtype="<f4").reshape(1, *TASK["input"]))
    with torch.no_grad():
        logits = model(image)
    return {"logits": logits.flatten().tolist(), "maxRssKiB": peak_rss_kib()}


def main():
    try:
        emit({"serve": serve, "coldstart": coldstart}[TASK["mode"]]())
    except Exception:  # noqa: BLE001 — every failure becomes the row's error, as in worker.ts
        emit({"engine": TASK.get("engine"), "arch": TASK.get("arch"), "batch": TASK.get("batch"), "error": traceback.format_exc()})
        sys.exit(1)


if __name__ == "__main__":
    main()
