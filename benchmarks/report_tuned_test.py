"""The test number of recipes already chosen on validation (``benchmarks/tune_c.py``), looked at last.

    .venv/bin/python benchmarks/report_tuned_test.py DIR [--root FOLDER]

Reads what ``tune_c.py`` wrote in ``DIR`` and refuses to run before its ``choice.json`` exists:
the choice is written down first, and nothing here changes it. Each trained model of
``DIR/weights/`` is scored on the test split of the dataset it was tuned on (for the official
protocol, the Testing folder); ``DIR/test_after_choice.json`` gets the numbers, and the table
printed sets them beside the validation accuracy that made the choice. The numbers are
reported, and used for nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))

import tune_c  # noqa: E402  (the results' layout and candidates)

OUT = "test_after_choice.json"


def test_scores(result: dict, test, *, weights_dir: Path) -> dict:
    """Test accuracy and per-class recall of one trained candidate."""
    from medrepro.data import brain_mri
    from medrepro.models import brain_mri as mm
    from medrepro.training import train

    size = result["size"]
    model = mm.seq_cnn((size, size, 3))
    model.load_weights(weights_dir / result["weights"])
    ds = brain_mri.image_dataset(test, image_size=size, batch_size=64, framing=result["framing"])
    pred = train.predict_classes(model, ds)
    y = test["label"].to_numpy()
    return {"candidate": result["candidate"], "seed": result["seed"],
            "val_accuracy": result["val_accuracy"],
            "test_accuracy": round(float((pred == y).mean()), 4), "n_test": len(y),
            "test_recall": {name: round(float((pred[y == k] == k).mean()), 3)
                            for k, name in enumerate(brain_mri.CLASS_NAMES) if (y == k).any()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--root", type=Path, help="dataset folder (default: ../shared/data's)")
    args = parser.parse_args(argv)
    import pandas as pd

    from medrepro.core import paths
    from medrepro.core.fileio import write_json
    from medrepro.data import brain_mri

    choice_path = args.dir / tune_c.CHOICE
    if not choice_path.is_file():
        print(f"report_tuned_test: {choice_path} does not exist: make the choice on validation "
              "first (benchmarks/tune_c.py)", file=sys.stderr)
        return 2
    choice = json.loads(choice_path.read_text())
    results = tune_c.read_results(args.dir)
    dataset = results[0].get("dataset", "brain_tumor_sartaj")
    root = args.root or (paths.shared_data_dir() or Path("/nonexistent")) / dataset
    test = brain_mri.list_images(root, dataset, splits=("Testing",))
    rows = [test_scores(r, test, weights_dir=args.dir / tune_c.WEIGHTS) for r in results]
    write_json(args.dir / OUT, {"choice": choice["chosen"], "choice_written_utc":
                                choice["written_utc"], "scored_utc": time.strftime(
                                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows})
    frame = pd.DataFrame(rows)
    table = frame.groupby("candidate")[["val_accuracy", "test_accuracy"]].mean()
    table = table.loc[[r["candidate"] for r in choice["ranking"]]]
    print(f"chosen on validation before this: {choice['chosen']} ({choice['rule']})")
    print(table.round(4).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
