"""MovieLens-100K, canonical u1.base / u1.test split (5% of u1.base held out for validation):

Run: python examples/movielens.py   (add graphplat train options, e.g. --seeds 0 --epochs 20)
Prints the JSON result and logs the test metric (mean +- std over the seeds) next to the
published reference number.
"""
import sys

from run_example import run

if __name__ == "__main__":
    sys.exit(run("movielens"))
