"""`python -m grukit COMMAND …` (and `torchrun … -m grukit COMMAND …`): the `grukit` command itself."""
import sys

from grukit.cli import main

if __name__ == "__main__":  # importing this module (a tampered checkpoint naming it) runs nothing
    sys.exit(main())
