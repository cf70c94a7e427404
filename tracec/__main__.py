"""Command line: ``python -m tracec ops`` lists the op table, ``python -m tracec numpy``
the NumPy functions that work on traced arrays, ``python -m tracec config`` the flags,
``python -m tracec cache info|list|clear|prune`` manages the compiled-code cache."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tracec", description=__doc__)
    parser.add_argument("command", choices=["ops", "numpy", "config", "cache"])
    parser.add_argument("action", nargs="?", choices=["info", "list", "clear", "prune"], default="info",
                        help="for `cache`: info (default), list, clear or prune the compiled-code cache")
    args = parser.parse_args(argv)
    import numpy as np
    import tracec as tc
    if args.command == "ops":
        by_kind = {}
        for name, op in sorted(tc.OPS.items()):
            by_kind.setdefault(op.kind, []).append(name)
        for kind, names in sorted(by_kind.items()):
            print(f"{kind} ({len(names)}): {' '.join(names)}")
        from tracec.cgen.executor import how_op_runs
        by_way = {}
        for name, op in sorted(tc.OPS.items()):
            by_way.setdefault(how_op_runs(op), []).append(name)
        print("\nFAST_RUN executes them as:")
        for way in ("C kernel", "C reduction", "BLAS", "native loop", "native branch", "view", "copy",
                    "NumPy"):
            names = by_way.get(way, [])
            print(f"  {way} ({len(names)}): {' '.join(names)}")
        print("(elementwise ops of dtypes C has no type for, and BLAS products of integers, run NumPy too)")
    elif args.command == "numpy":
        from tracec.trace.numpy_api import HANDLED
        from tracec.trace.numpy_shape import HANDLED_CREATION
        from tracec.trace.ops.elemwise import UFUNC_OPS
        print("ufuncs:", " ".join(sorted(u.__name__ for u in UFUNC_OPS)))
        print("functions:", " ".join(sorted({f.__name__ for f in HANDLED})))
        print("creation (traced sizes):", " ".join(sorted(HANDLED_CREATION)))
        _ = np
    elif args.command == "cache":
        from tracec.cgen.cache import command
        print(command(args.action))
    else:
        print(tc.config.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
