"""`python -m genja` is the `genja` command."""

import sys

from genja._cli import main

sys.exit(main())
