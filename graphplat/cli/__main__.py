"""``python -m graphplat.cli``: the ``graphplat`` command."""
import sys

from graphplat.cli import main

sys.exit(main())
