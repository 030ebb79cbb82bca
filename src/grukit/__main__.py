"""`python -m grukit COMMAND …` (and `torchrun … -m grukit COMMAND …`): the `grukit` command itself."""
import sys

from grukit.cli import main

sys.exit(main())
