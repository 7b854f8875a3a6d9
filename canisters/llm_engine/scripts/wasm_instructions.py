#!/usr/bin/env python3
"""Counts the wasm instructions the engine spends per step, as a proxy for
the Internet Computer's instruction meter: wasmtime "fuel" (one unit per
executed operator) and, if the module was instrumented with the IC's
weighted cost table (tools/ic_meter, the simulator's table: exported global
`ic_instructions`), the IC's count.

Build the probe first (from the crate directory, add +simd128 or not):
  RUSTFLAGS="-C target-feature=+simd128 -C llvm-args=-disable-lsr" cargo build --release \
      --target wasm32-unknown-unknown --example wasm_probe
For IC-weighted counts instrument it first (tools/ic_meter, its own cargo project):
  (cd tools/ic_meter && cargo run --release -- PROBE.wasm PROBE_IC.wasm [--profile])
Then: python3 scripts/wasm_instructions.py PROBE_IC.wasm stories|qwen05b-q8|... [--blocks N] [--profile 20]
Building the probe with and without +simd128 and comparing the printed
checksums checks that both kernel paths give identical logits.
Needs `pip install wasmtime`."""
import argparse
import os
import time

import wasmtime

FUEL = 10**15


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("wasm")
    ap.add_argument("model", choices=["stories", "qwen05b-q8", "qwen05b-q4km", "qwen05b-f16", "tiny-qwen2",
                                      "tiny-qwen2-q8", "tiny-qwen2-f16", "tiny-llama"])
    ap.add_argument("--blocks", type=int, default=0, help="override the block count (synthetic only)")
    ap.add_argument("--prompt", type=int, default=16, help="prompt tokens fed in one batch")
    ap.add_argument("--steps", type=int, default=3, help="tokens generated one by one")
    ap.add_argument("--positions", default="",
                    help="comma-separated context positions: cost of one generation step at each "
                         "(the prompt is fed in batches of 64 to get there)")
    ap.add_argument("--profile", type=int, default=0,
                    help="print the N costliest functions (module instrumented with --profile)")
    args = ap.parse_args()

    config = wasmtime.Config()
    config.consume_fuel = True
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    store.set_fuel(FUEL)
    module = wasmtime.Module.from_file(engine, args.wasm)
    instance = wasmtime.Instance(store, module, [])
    ex = instance.exports(store)
    memory = ex["memory"]

    ic = ex.get("ic_instructions") if hasattr(ex, "get") else None
    try:
        ic = ex["ic_instructions"]
    except (KeyError, IndexError):
        ic = None

    def metered(name, *call_args):
        """Returns (result, IC-weighted count if available, else fuel)."""
        before = store.get_fuel()
        ic_before = ic.value(store) if ic else 0
        t = time.time()
        result = ex[name](store, *call_args)
        used = before - store.get_fuel()
        line = f"{name}{call_args}: {used / 1e6:,.1f} M ops"
        if ic:
            used = ic.value(store) - ic_before
            line += f", {used / 1e6:,.1f} M IC instructions"
        print(f"{line}, {time.time() - t:.2f} s -> {result}")
        return result, used

    # The kernels as compiled in this module against the scalar reference arithmetic.
    print(f"kernel self-check: {ex['check_kernels'](store)} outputs differ from the reference")
    if args.model == "stories":
        path = os.path.join(os.path.dirname(__file__), "../../../../shared/models/stories260Ktok512.gguf")
        data = open(path, "rb").read()
        ptr = ex["alloc"](store, len(data))
        memory.write(store, data, ptr)
        assert metered("load_gguf", ptr, len(data), 128)[0] == 0
        text = b"Joe loves writing stories"
        tptr = ex["alloc"](store, len(text))
        memory.write(store, text, tptr)
        n, used = metered("feed_text", tptr, len(text))
        print(f"  = {used / n / 1e6:,.2f} M per prompt token ({n} tokens)")
    else:
        preset, ty = {"tiny-llama": (0, 0), "tiny-qwen2": (1, 0), "tiny-qwen2-q8": (1, 8),
                     "tiny-qwen2-f16": (1, 1), "qwen05b-q8": (2, 8), "qwen05b-q4km": (2, 12), "qwen05b-f16": (2, 1)}[args.model]
        t = time.time()
        assert ex["build_synthetic"](store, preset, ty, args.blocks, 4096) == 0
        store.set_fuel(FUEL)
        print(f"built synthetic model in {time.time() - t:.1f} s")
        _, used = metered("feed_dummy", args.prompt)
        print(f"  = {used / args.prompt / 1e6:,.2f} M per prompt token")
    if args.positions:
        # At each position: a batch of 32 prompt tokens ending just before
        # it (when there is room), then one generated token at it.
        fed = args.prompt
        for target in [int(p) for p in args.positions.split(",")]:
            batch_at = target - 1 - 32
            while fed < batch_at:
                batch = min(64, batch_at - fed)
                ex["feed_dummy"](store, batch)
                fed += batch
            if fed == batch_at:
                _, used = metered("feed_dummy", 32)
                fed += 32
                print(f"  position {target}: {used / 32 / 1e6:,.2f} M per prompt token (batch of 32)")
            while fed < target - 1:
                batch = min(64, target - 1 - fed)
                ex["feed_dummy"](store, batch)
                fed += batch
            _, used = metered("step")
            fed += 1
            print(f"  position {target}: {used / 1e6:,.2f} M per generated token")
    if args.profile:  # leave model loading out of the profile
        for idx in range(100000):
            try:
                ex[f"prof_{idx}"].set_value(store, wasmtime.Val.i64(0))
            except (KeyError, IndexError):
                break
    _, used = metered("logits")
    print(f"  checksum {ex['logits_checksum'](store)!r}")
    tokens = []
    for _ in range(args.steps):
        tok, used = metered("step")
        tokens.append(tok)
    metered("logits")
    print(f"tokens {tokens}, checksum {ex['logits_checksum'](store)!r}")
    if args.profile:
        names = {}
        names_path = args.wasm + ".names"
        if os.path.exists(names_path):
            for line in open(names_path):
                idx, name = line.rstrip("\n").split(" ", 1)
                names[int(idx)] = name
        costs = []
        for idx in range(100000):
            try:
                g = ex[f"prof_{idx}"]
            except (KeyError, IndexError):
                break
            costs.append((g.value(store), names.get(idx, str(idx))))
        total = sum(c for c, _ in costs)
        print(f"profile (from the first logits on, {total / 1e6:,.1f} M):")
        for c, name in sorted(costs, reverse=True)[: args.profile]:
            print(f"  {c / total * 100:5.1f}%  {c / 1e6:9.1f} M  {name[:110]}")


if __name__ == "__main__":
    main()
