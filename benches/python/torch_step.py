#!/usr/bin/env python3
"""PyTorch reference training loop for the Toy Model of Compressed Computation.

`cargo xtask bench` runs this file as a subprocess to time PyTorch against
tmcc on the same maths. It prints exactly one line of JSON on stdout.

The maths is written the way a researcher would write it in a notebook:
weights stored as [instances, rows, cols] tensors, contractions via
torch.einsum, inputs drawn fresh every step inside the timed loop, and
torch.optim.Adam doing the update.

Shapes (B = batch, K = instances, F = n_feat, H = n_hidden, D = d_emb):

  x  [B, K, F]   each entry U[-1, 1] with probability p, else 0
  y  = relu(x) + r * x

  emb_res:  W_E [K, D, F] fixed (not trained), Gaussian, unit-norm columns
            W1  [K, H, D], W2 [K, D, H], Xavier-normal, no biases
            u = W_E x ; h = relu(W1 u) ; s = W2 h + r * u ; out = W_E^T s
            with --layers L > 1 (APD's residual MLPs), L blocks, each reading the
            stream so far: a_0 = u, v_l = W2_l relu(W1_l a_l), a_{l+1} = a_l + v_l,
            s = sum_l v_l + r * u
  mix:      M   [K, F, F] fixed, symmetric, N(0, 1) off the diagonal, 0 on it
            W1  [K, H, F], W2 [K, F, H], Xavier-normal, no biases
            out = W2 relu(W1 x) + r * (x + sigma * M x)

  loss = mean over batch, instances and features of (out - y)^2
  Adam (or --optimizer adamw with --weight-decay), lr 5e-4 (--lr): zero_grad,
  backward, step each iteration.

Exit codes: 0 ok, 2 bad arguments, 3 torch cannot be imported,
4 the requested device is not available.
"""

import argparse
import json
import math
import statistics
import sys
import time
import warnings

# Printed when torch is missing; keep in sync with benches/python/README.md.
INSTALL_HINT = (
    "python3 -m pip install --no-deps torch==2.15.0 && "
    "python3 -m pip install filelock typing-extensions sympy networkx jinja2 "
    "fsspec mpmath MarkupSafe numpy && "
    "python3 -m pip install --no-deps nvidia-cuda-runtime==13.2.86 "
    "nvidia-cuda-cupti==13.2.86 nvidia-cuda-nvrtc==13.2.86 "
    "nvidia-cublas==13.4.1.3 nvidia-cufft==12.2.0.57 nvidia-cufile==1.17.1.22 "
    "nvidia-cusparse==12.7.10.12 nvidia-nvjitlink==13.5.37 "
    "nvidia-cudnn-cu13==9.26.0.51 nvidia-cusparselt-cu13==0.8.1 "
    "nvidia-nccl-cu13==2.30.7 nvidia-nvshmem-cu13==3.7.2 "
    "(or simply: python3 -m pip install torch; see benches/python/README.md)"
)

LR = 5e-4


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="PyTorch reference step timer for tmcc benchmarks")
    ap.add_argument("--model", choices=["emb_res", "mix"], default="emb_res")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--n-feat", type=int, default=100)
    ap.add_argument("--n-hidden", type=int, default=50)
    ap.add_argument("--d-emb", type=int, default=1000)
    ap.add_argument("--p", type=float, default=0.01)
    ap.add_argument("--res-factor", type=float, default=1.0)
    ap.add_argument("--sigma", type=float, default=0.03,
                    help="strength of the mixing matrix (mix model only)")
    ap.add_argument("--layers", type=int, default=1,
                    help="residual blocks (emb_res model only)")
    ap.add_argument("--optimizer", choices=["adam", "adamw"], default="adam")
    ap.add_argument("--lr", type=float, default=LR, help="Adam's learning rate")
    ap.add_argument("--weight-decay", type=float, default=0.0,
                    help="AdamW's decoupled weight decay")
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--steps", type=int, default=50, help="timed steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch.set_num_threads; 0 leaves torch's default")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for name in ("batch", "n_feat", "n_hidden", "d_emb", "instances", "steps", "layers"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or args.threads < 0:
        ap.error("--warmup and --threads must be non-negative")
    if not 0.0 <= args.p <= 1.0:
        ap.error("--p must lie in [0, 1]")
    if not args.lr > 0.0:
        ap.error("--lr must be positive")
    if args.weight_decay < 0.0:
        ap.error("--weight-decay must be non-negative")
    if args.layers > 1 and args.model != "emb_res":
        ap.error("--layers > 1 needs --model emb_res")
    return args


def import_torch():
    try:
        with warnings.catch_warnings():
            # A torch without numpy warns at import; numpy is optional here.
            warnings.filterwarnings("ignore", message=".*NumPy.*")
            import torch  # noqa: F401
    except Exception as err:  # ImportError, or OSError/ValueError for missing shared libraries
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"torch_step.py: cannot import torch ({type(err).__name__}: {msg}); "
              f"install it with: {INSTALL_HINT}", file=sys.stderr)
        sys.exit(3)
    return torch


def percentile(sorted_xs, q):
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    if len(sorted_xs) == 1:
        return sorted_xs[0]
    pos = (len(sorted_xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def main(argv=None):
    args = parse_args(argv)
    torch = import_torch()
    import torch.nn.functional as Fn

    if args.device == "cuda" and not torch.cuda.is_available():
        print("torch_step.py: --device cuda requested but torch.cuda.is_available() "
              "is False", file=sys.stderr)
        sys.exit(4)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    dev = torch.device(args.device)
    B, K = args.batch, args.instances
    F, H, D = args.n_feat, args.n_hidden, args.d_emb
    p, r, sigma = args.p, args.res_factor, args.sigma

    def xavier(rows, cols):
        # Xavier-normal per instance: std = sqrt(2 / (fan_in + fan_out)).
        w = torch.empty(K, rows, cols, device=dev)
        for k in range(K):
            torch.nn.init.xavier_normal_(w[k])
        return w.requires_grad_()

    if args.model == "emb_res":
        W_E = torch.randn(K, D, F, device=dev)
        W_E = W_E / W_E.norm(dim=1, keepdim=True)  # unit-norm columns, fixed
        W1s = [xavier(H, D) for _ in range(args.layers)]
        W2s = [xavier(D, H) for _ in range(args.layers)]
        params = W1s + W2s

        def forward(x):
            u = torch.einsum("kdf,bkf->bkd", W_E, x)
            a, s = u, r * u
            for l, (W1, W2) in enumerate(zip(W1s, W2s)):
                h = torch.relu(torch.einsum("khd,bkd->bkh", W1, a))
                v = torch.einsum("kdh,bkh->bkd", W2, h)
                s = s + v
                if l + 1 < len(W1s):
                    a = a + v
            return torch.einsum("kdf,bkd->bkf", W_E, s)
    else:
        A = torch.randn(K, F, F, device=dev)
        M = torch.triu(A, diagonal=1)
        M = M + M.transpose(1, 2)  # symmetric, zero diagonal, fixed
        W1 = xavier(H, F)
        W2 = xavier(F, H)
        params = [W1, W2]

        def forward(x):
            h = torch.relu(torch.einsum("khf,bkf->bkh", W1, x))
            mixed = x + sigma * torch.einsum("kfg,bkg->bkf", M, x)
            return torch.einsum("kfh,bkh->bkf", W2, h) + r * mixed

    if args.optimizer == "adamw":
        opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=args.lr)

    def step():
        vals = torch.rand(B, K, F, device=dev) * 2 - 1
        mask = torch.rand(B, K, F, device=dev) < p
        x = vals * mask
        y = torch.relu(x) + r * x
        out = forward(x)
        loss = Fn.mse_loss(out, y)  # mean over batch, instances, features
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    cuda = dev.type == "cuda"
    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()

    times = []
    loss = None
    for _ in range(args.steps):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)

    ts = sorted(times)
    result = {
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "model": args.model,
        "batch": B,
        "instances": K,
        "steps": args.steps,
        "median_step_s": statistics.median(ts),
        "p10_step_s": percentile(ts, 10),
        "p90_step_s": percentile(ts, 90),
        "final_loss": float(loss.item()),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
