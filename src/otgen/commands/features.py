"""``otgen features train | info | list | fetch``: the pinned feature extractors behind FID & co."""

from __future__ import annotations

import argparse
import json

from otgen.errors import OTGenError

HELP = "feature extractors for FID/KID/PRD: train the domain networks, list, inspect"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    tr = sub.add_parser("train", help="train fmnist-net / digits-net with a fixed seed")
    tr.add_argument("--data", required=True, choices=["fashion-mnist", "digits"])
    tr.add_argument("--epochs", type=int, default=None, help="default 6 (fashion), 40 (digits)")
    tr.add_argument("--batch-size", type=int, default=128)
    tr.add_argument("--lr", type=float, default=3e-3, help="peak one-cycle Adam learning rate")
    tr.add_argument("--threads", type=int, default=1, help="CPU threads (1: reproducible)")
    tr.add_argument("--out", required=True, help="output .safetensors (a .json record beside it)")
    tr.add_argument("--data-root", default=None, help="folder holding the dataset files")
    tr.add_argument("--device", default="cpu", help="cpu (default, reproducible), cuda, auto")
    tr.add_argument("--seed", type=int, default=0)
    info = sub.add_parser("info", help="show an extractor's layer, weights hash and record")
    info.add_argument("name")
    info.add_argument("--weights", default=None, help="weights file (inception-v3)")
    sub.add_parser("list", help="list registered extractors")
    fe = sub.add_parser("fetch", help="download and cache pretrained weights (inception-v3)")
    fe.add_argument("name", choices=["inception-v3"])
    fe.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from otgen.metrics import features as feats

    if args.action == "train":
        if not args.out.endswith(".safetensors"):
            raise OTGenError(f"--out must end in .safetensors, got {args.out!r}")
        record = feats.train_domain_net(
            args.data,
            out=args.out,
            epochs=args.epochs,
            seed=args.seed,
            batch_size=args.batch_size,
            lr=args.lr,
            root=args.data_root,
            device=args.device,
            threads=args.threads,
        )
        print(f"wrote {args.out} (test accuracy {record['test_accuracy']:.4f})")
        return 0
    if args.action == "info":
        ext = feats.get_extractor(args.name, weights=args.weights)
        print(f"name:    {ext.name}\nlayer:   {ext.layer}\nsha256:  {ext.weights_sha256}")
        print(f"input:   {ext.input_shape}\nlogits:  {ext.is_classifier}")
        if ext.info:
            print(json.dumps(ext.info, indent=2))
        return 0
    if args.action == "list":
        for name in feats.available_extractors():
            print(name)
        return 0
    if args.action == "fetch":
        from otgen.data.fetch import fetch_inception_weights

        path = fetch_inception_weights(progress=not args.no_progress)
        print(f"{args.name}: weights in {path} (found there automatically from now on)")
        return 0
    raise OTGenError("choose an action: train, info, list or fetch")
