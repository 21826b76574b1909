"""ACM (HeCo's release): paper classification with 20 labelled papers per class; the

Run: python examples/acm.py   (add graphplat train options, e.g. --seeds 0 --epochs 20)
Prints the JSON result and logs the test metric (mean +- std over the seeds) next to the
published reference number.
"""
import sys

from run_example import run

if __name__ == "__main__":
    sys.exit(run("acm"))
